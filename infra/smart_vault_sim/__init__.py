"""The emulated AWS account: the real workflow and handlers on moto, with a virtual clock."""
