"""The isolated vault account: the source shares its completed backups with the vault account
(``share``), and the vault's own functions pull them, copying each with the vault's key, pruning
and locking the copies by the vault's own rules (``pull``). Nothing of the source has any
permission in the vault account; the vault reads only what is shared with it."""
