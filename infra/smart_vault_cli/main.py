"""The `smart-vault` command."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from smart_vault_cli import conventions
from smart_vault_cli.conventions import Exit, status_cell
from smart_vault_cli.deployment import (
    CliError,
    Deployment,
    check_writable,
    explain_aws_failure,
    manual_input,
    read_json_file,
    write_json_file,
)
from smart_vault_cli.sandbox import sandbox
from smart_vault_infra.paths import definition_path
from smart_vault_sim.scenario import ScenarioError, parse_scenario
from smart_vault_sim.summary import print_progress, print_summary

if TYPE_CHECKING:
    from smart_vault_cli import operations as ops


def _operations() -> Any:
    """The operator verbs' code, imported when a verb runs: it loads the functions' modules
    (Powertools, X-Ray), which `simulate` and `--help` do not need."""
    from smart_vault_cli import operations

    return operations


class _Cli(click.Group):
    """Every verb accepts the global flags and `--output`; every failure ends here as one line:
    exit 2 for what the user can fix (AWS, input, environment), 3 for a bug, never a traceback."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        taken = {opt for p in cmd.params for opt in p.opts}
        cmd.params += [p for p in conventions.global_options() if not taken & set(p.opts)]
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as error:
            _fail(error)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            reason = explain_aws_failure(error)
            if reason is not None:
                _fail(" ".join(reason.split()))  # one line: botocore messages may span several
            if os.environ.get("SMART_VAULT_DEBUG"):
                raise
            first = " ".join(str(error).split())[:300]
            click.echo(
                f"internal error (a bug in smart-vault; SMART_VAULT_DEBUG=1 shows the traceback): "
                f"{type(error).__name__}: {first}",
                err=True,
            )
            sys.exit(Exit.INTERNAL)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smart-vault", prog_name="smart-vault")
@click.option(
    "--stack",
    default="SmartVault",
    envvar="SMART_VAULT_STACK",
    show_default=True,
    help="CloudFormation stack of the deployment.",
)
@click.option("--region", envvar="AWS_REGION", help="AWS region of the stack.")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile (standard credential chain otherwise).")
@click.pass_context
def cli(ctx: click.Context, stack: str, region: str | None, profile: str | None) -> None:
    """Smart Vault: tag-driven EBS snapshot backups for EC2, orchestrated by Step Functions.

    Exit codes, for every verb: 0 done; 1 it ran and reports a failure (a backup, redrive or
    preflight that FAILED); 2 it could not run (usage, input, environment, AWS); 3 a bug."""
    ctx.ensure_object(dict).update(stack=stack, region=region, profile=profile)


cli.params += [conventions.output_option(), conventions.no_color_option()]


def _out(ctx: click.Context) -> conventions.Output:
    return conventions.output_of(ctx)


_json_alias = click.option(
    "--json", is_flag=True, expose_value=False, callback=conventions.json_alias, help="The same as --output json."
)


def _deployment(ctx: click.Context) -> Deployment:
    return Deployment.find(ctx.obj["stack"], region=ctx.obj["region"], profile=ctx.obj["profile"])


def _fail(error: Exception | str) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(Exit.ERROR)


def _follow_and_exit(ctx: click.Context, dep: Deployment, arn: str, follow: bool) -> None:
    """JSON: {"execution_arn", "followed", "status", "total", "done", "failed"} (null unless followed)."""
    out = _out(ctx)
    document: dict[str, Any] = {"execution_arn": arn, "followed": follow, "status": None}
    document |= {"total": None, "done": None, "failed": None}
    if not out.json:
        click.echo(f"execution: {arn}")
    if not follow:
        if out.json:
            out.document(document)
        return
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        console=out.console(stderr=True),
        transient=False,
        disable=out.json,
    ) as bar:
        task = bar.add_task("backing up", total=None, counts="")

        def update(p: ops.Progress) -> None:
            pending = (p.total - p.done - p.failed) if p.total is not None else "?"
            bar.update(
                task,
                total=p.total,
                completed=p.done + p.failed,
                counts=f"done {p.done}  failed {p.failed}  pending {pending}  [{p.status}]",
            )

        final = _operations().follow(dep, arn, on_update=update, interval=0.5)
    if out.json:
        out.document(document | dataclasses.asdict(final))
    else:
        out.print(status_cell(final.status) + f": {final.done} backed up or skipped, {final.failed} failed")
    sys.exit(Exit.OK if final.status == "SUCCEEDED" else Exit.FAILED)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be created and deleted; change nothing.")
@click.option("--follow", is_flag=True, help="Show progress until the execution ends; exit 0 only on SUCCEEDED.")
@click.pass_context
def run(ctx: click.Context, dry_run: bool, follow: bool) -> None:
    """Start a backup run now."""
    dep = _deployment(ctx)
    _follow_and_exit(ctx, dep, dep.start(manual_input(dry_run=dry_run), kind="manual"), follow)


@cli.command()
@click.option("--notify", is_flag=True, help="Also publish one test alert (marked as a test) to the topic.")
@_json_alias
@click.pass_context
def preflight(ctx: click.Context, notify: bool) -> None:
    """Prove the deployment against this account: every function makes its night's calls with
    its own role, with DryRun (nothing changes). Exit 0 only when nothing was denied or failed,
    1 otherwise, 2 when the preflight could not run."""
    from smart_vault_cli import preflight as pf

    out = _out(ctx)
    dep = _deployment(ctx)
    report = pf.start_and_wait(dep, notify=notify)
    found = pf.rows(dep, report)
    if out.json:
        report["checks"] = [r.to_dict() for r in found]
        out.document(report)
        sys.exit(pf.exit_code(report))
    table = Table(title=f"Smart Vault preflight: {report['status']}", show_lines=False)
    for column in ("role", "action", "resource", "result", "reason"):
        table.add_column(column, overflow="fold")
    for r in found:
        table.add_row(r.role, r.action, r.resource, status_cell(r.result), r.reason)
    out.print(table)
    click.echo(f"record: s3://{dep.bucket}/{report.get('record')}")
    sys.exit(pf.exit_code(report))


@cli.command()
@click.argument("execution")
@click.option("--redrive", is_flag=True, help="Redrive the execution instead of starting a new one.")
@click.option("--follow/--no-follow", default=True, show_default=True, help="Follow it like `run --follow`.")
@click.pass_context
def rerun(ctx: click.Context, execution: str, redrive: bool, follow: bool) -> None:
    """Re-run EXECUTION (name or ARN) with the same input: completes what is missing, no duplicates."""
    dep = _deployment(ctx)
    _follow_and_exit(ctx, dep, _operations().rerun(dep, execution, redrive=redrive), follow)


@cli.command()
@click.argument("execution")
@click.option("--follow", is_flag=True, help="Show progress until the execution ends; exit 0 only on SUCCEEDED.")
@click.pass_context
def redrive(ctx: click.Context, execution: str, follow: bool) -> None:
    """Redrive EXECUTION (name or ARN): re-attempt only what failed, under the same ARN."""
    dep = _deployment(ctx)
    _follow_and_exit(ctx, dep, _operations().redrive_execution(dep, execution), follow)


@cli.command()
@click.argument("execution", required=False)
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),  # ListExecutions maxResults: 0-1000, 0 meaning the default
    help="How many recent executions to list.",
)
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")),
    help="Only the executions in this status (ListExecutions' statusFilter).",
)
@click.option("--since", help="Only the executions started since this ISO 8601 time or age (30m, 24h, 7d).")
@click.option("--follow", is_flag=True, help="With EXECUTION: show progress until it ends, then its result.")
@click.pass_context
def status(
    ctx: click.Context,
    execution: str | None,
    limit: int,
    status_filter: str | None,
    since: str | None,
    follow: bool,
) -> None:
    """Recent executions (backups and drills), with what needs attention, or one execution's
    result per instance."""
    # JSON: a list of executions, or {"execution", "instances", "kept", ...} for one (docs/operations.md).
    out = _out(ctx)
    ops_ = _operations()
    if execution is None:
        if follow:
            _fail("--follow needs an EXECUTION")
        started = ops_.parse_since(since) if since is not None else None
        dep = _deployment(ctx)
        found = ops_.status_rows(dep, limit, status=status_filter, since=started)
        found += ops_.drill_rows(dep, limit, status=status_filter, since=started)
        found.sort(key=lambda r: r["start"], reverse=True)
        found = found[:limit]
        if out.json:
            out.document(found)
            return
        table = Table(title=f"Smart Vault executions ({dep.stack})")
        columns = ("execution", "started", "status", "redrives", "backed up", "failed", "created", "deleted")
        for column in (*columns, "kept locked", "next unlock", "copies", "needs attention"):
            table.add_column(column)
        for row in found:
            copies = (
                "-"
                if not row["copies"] and not row["copies_deleted"]
                else f"{row['copies']} (pruned {row['copies_deleted']})"
            )
            table.add_row(
                row["name"],
                f"{row['start']:%Y-%m-%d %H:%M:%S}",
                status_cell(row["status"]),
                str(row["redrives"]),
                *(_cell(row[k]) for k in ("backed_up", "failed", "created", "deleted", "locked", "next_unlock")),
                copies,
                "\n".join(_attention(row)) or "-",
            )
        out.print(table)
        return
    if status_filter is not None or since is not None:
        _fail("--status and --since filter the list: not with an EXECUTION")
    dep = _deployment(ctx)
    final = None
    description = dep.describe(execution)
    if follow:
        final = ops_.follow(dep, description["executionArn"], on_update=lambda p: None, interval=_POLL_SECONDS)
        description = dep.describe(execution)
    if ops_.is_drill(dep, description):
        drilled, drill_rows = ops_.drill_detail(dep, description)
        _drill_status(out, drilled, drill_rows, description)
        _exit_followed(final)
        return
    description, rows, kept = ops_.execution_detail(dep, execution)
    if out.json:
        described = {k: description.get(k) for k in _EXECUTION_KEYS}
        out.document({"execution": described, "instances": rows, "kept": kept})
        _exit_followed(final)
        return
    table = Table(title=f"{description['name']}: {description['status']}")
    for column in ("instance", "id", "status", "snapshots", "deleted", "copies per region", "detail"):
        table.add_column(column)
    for row in rows:
        locked = "; ".join(row.get("locked_until") or ())
        detail = "; ".join(part for part in (row["detail"], locked) if part)
        table.add_row(
            row["name"],
            row["instance_id"],
            status_cell(row["status"]),
            str(row["snapshots"]),
            str(row["deleted"]),
            row["copies"] or "-",
            detail,
        )
    out.print(table)
    _print_kept(out, "Snapshots kept by this execution", kept, planned=False)
    _exit_followed(final)


_EXECUTION_KEYS = ("name", "executionArn", "status", "startDate", "stopDate", "redriveCount", "error", "cause")


def _drill_status(
    out: conventions.Output, drill: dict[str, Any] | None, rows: list[dict[str, Any]], description: dict[str, Any]
) -> None:
    """`status` of a restore drill's execution: its result and a row per drilled instance."""
    if out.json:
        execution = {k: description.get(k) for k in _EXECUTION_KEYS}
        out.document({"execution": execution, "workflow": "drill", "drill": drill, "instances": rows})
        return
    table = Table(title=f"drill {description['name']}: {description['status']}")
    for column in ("instance", "id", "status", "recovery point", "volumes", "seconds to available", "detail"):
        table.add_column(column)
    for row in rows:
        seconds = row["seconds_to_available"]
        table.add_row(
            row["name"],
            row["instance_id"],
            status_cell(row["status"]),
            row["recovery_point"] or "-",
            str(row["volumes"]),
            "-" if seconds is None else str(seconds),
            row["detail"],
        )
    out.print(table)
    if drill is None:
        click.echo("no drill record (the Report step did not run)")


def _exit_followed(final: ops.Progress | None) -> None:
    """`status EXECUTION --follow`: exit 0 only on SUCCEEDED, like `run --follow`."""
    if final is not None:
        sys.exit(Exit.OK if final.status == "SUCCEEDED" else Exit.FAILED)


def _attention(row: dict[str, Any]) -> list[str]:
    """What an operator must act on or know of a run, one line each (`status`)."""
    lines = []
    if row.get("drill"):
        drill = row["drill"]
        proved = f" in {drill['region']}" if drill.get("region") else ""
        if drill.get("filesystems"):
            proved += f", verified {', '.join(drill['filesystems'])} ({drill['blocks_read']} blocks read)"
        lines.append(f"drill {drill['status']}: {drill['passed']}/{drill['instances']} restored{proved}")
        lines += [f"{i['label']}: {i['reason']}" for i in drill["problems"]]
        return lines
    if row.get("dry_run"):
        lines.append(f"DRY RUN: would delete {row['would_delete']} snapshot(s)")
    lines += [f"breaker on {b}: {cmd}" for b, cmd in zip(row["breakers"], row["approve"], strict=True)]
    orphans = row.get("orphans")
    if orphans and (orphans["volumes"] or orphans["status"] == "skipped"):
        if orphans["status"] == "skipped":
            lines.append(f"orphans not pruned: {orphans['reason']}")
        elif orphans["status"] == "dry_run":
            lines.append(f"orphans: would delete {orphans['would_delete']}, keep {orphans['kept']}")
        else:
            lines.append(f"orphans: pruned {orphans['deleted']}, kept {orphans['kept']}")
    return lines + list(row.get("copy_problems") or ())


def _print_kept(out: conventions.Output, title: str, kept: list[dict[str, object]], *, planned: bool) -> None:
    """Which rule kept each snapshot (daily/weekly/monthly/yearly, keep_min...) and its storage tier."""
    if not kept:
        return
    table = Table(title=title)
    for column in ("instance", "volume", "snapshot", "started", "kept by", "tier"):
        table.add_column(column)
    for k in kept:
        tier = str(k["storage_tier"])
        if k["archive"]:
            tier += " -> archive (would move now)" if planned else " -> archive (moving)"
        table.add_row(
            str(k["instance"]),
            str(k["volume_id"]),
            str(k["snapshot_id"]),
            str(k["start_time"]),
            str(k["kept_by"]),
            tier,
        )
    out.print(table)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _breaker_note(b: dict[str, Any]) -> str:
    """A tripped volume in `plan`: in which Region, and an approval its plan no longer matches."""
    note = f"circuit breaker on {b['volume_id']} in {b['region']}: {b['reason']}"
    if b.get("approved_run_id"):
        note += (
            f" (approval of run {b['approved_run_id']} for {len(b['approved_snapshot_ids'])} snapshot(s) "
            f"no longer matches the {len(b['would_delete'])} planned)"
        )
    return note


@cli.command()
@click.pass_context
def plan(ctx: click.Context) -> None:
    """What a run now would back up and prune (same code paths, read-only calls)."""
    out = _out(ctx)
    dep = _deployment(ctx)
    result = _operations().plan(dep)
    if out.json:  # the Plan's fields (docs/operations.md, "JSON output")
        out.document(dataclasses.asdict(result))
        return
    table = Table(title="Next run")
    for column in ("instance", "id", "volumes", "would delete", "note"):
        table.add_column(column)
    for row in result.instances:
        notes = [f"excluded {', '.join(row['excluded'])}"] if row["excluded"] else []
        notes += [row["retention_error"]] if row["retention_error"] else []
        notes += [f"would archive {', '.join(row['would_archive'])}"] if row["would_archive"] else []
        notes += [_breaker_note(b) for b in row["breakers"]]
        notes += [f"kept {p['snapshot_id']}: used by {p['image_id']}" for p in row["kept_by_ami"]]
        notes += [f"kept {p['snapshot_id']}: locked until {p['locked_until']}" for p in row.get("kept_locked") or ()]
        table.add_row(
            row["name"],
            row["instance_id"],
            ", ".join(row["volumes"]),
            ", ".join(row["would_delete"]) or "-",
            "; ".join(notes),
        )
    out.print(table)
    _print_kept(out, "Snapshots the next run keeps", result.kept, planned=True)
    if result.copies:
        copies = Table(title="Off-site copies per destination")
        for column in ("instance", "id", "region", "copies there", "would copy", "would delete there", "note"):
            copies.add_column(column)
        for row in result.copies:
            copies.add_row(
                row["name"],
                row["instance_id"],
                row["region"],
                str(row["copies"]),
                ", ".join(row["would_copy"]) or "-",
                ", ".join(row["would_delete"]) or "-",
                "; ".join(_breaker_note(b) for b in row["breakers"]),
            )
        out.print(copies)
    if result.orphans_note:
        click.echo(f"Orphaned snapshots: not pruned now ({result.orphans_note})")
        return
    orphans = Table(title=f"Orphaned volumes (pruned down to orphan_keep): {len(result.orphans)}")
    for column in ("instance", "id", "volume", "snapshots", "would delete", "note"):
        orphans.add_column(column)
    for row in result.orphans:
        notes = [_breaker_note(b) for b in row.get("breakers") or ()]
        notes += [row["retention_error"]] if row["retention_error"] else []
        if row.get("held_for_copies"):
            regions = sorted({r for h in row["held_for_copies"] for r in h["regions"]})
            notes.append(f"{len(row['held_for_copies'])} snapshot(s) held for off-site copies in {', '.join(regions)}")
        notes += [f"kept {p['snapshot_id']}: used by {p['image_id']}" for p in row["kept_by_ami"]]
        orphans.add_row(
            row["name"],
            row["instance_id"],
            row["volume_id"],
            str(row["snapshots"]),
            ", ".join(row["would_delete"]) or "-",
            "; ".join(notes),
        )
    out.print(orphans)


@cli.command()
@click.argument("run_id", required=False)
@click.option("--volume", help="Release only this volume (default: every volume the run stopped).")
@click.option(
    "--in-region",
    "in_region",
    help="Release only the breakers that tripped in this Region: the stack's own, or a destination "
    "of copies (default: every Region; required with --volume when that volume tripped in several; "
    "not --region, which names the stack's Region).",
)
@click.option("--list", "list_open", is_flag=True, help="List the open breakers (and their approve commands).")
@click.option("--dry-run", is_flag=True, help="Show the approvals it would write; write nothing.")
@click.pass_context
def approve(
    ctx: click.Context, run_id: str | None, volume: str | None, in_region: str | None, list_open: bool, dry_run: bool
) -> None:
    """Release the circuit breaker of RUN_ID for exactly the plan it stopped.

    A breaker is per volume and Region: one volume can trip in the source Region and in a
    destination of copies, each with its own plan and its own approval. The next run deletes
    those snapshots only if it would delete exactly the same ones in that Region; to act on it
    at once, re-run the execution (`smart-vault rerun EXECUTION`). `--list` shows the open
    breakers; `--dry-run` the approvals it would write."""
    out = _out(ctx)
    if list_open:
        if run_id or volume or in_region or dry_run:
            _fail("--list takes no RUN_ID, --volume, --in-region or --dry-run")
        _print_open_breakers(out, _operations().open_breakers(_deployment(ctx)))
        return
    if run_id is None:
        _fail("RUN_ID is required (or --list, to see the open breakers)")
    dep = _deployment(ctx)
    approvals = _operations().approve(dep, run_id, volume=volume, in_region=in_region, write=not dry_run)
    if out.json:  # a list of the approval records written (--dry-run: that would be)
        out.document([a.to_dict() for a in approvals])
        return
    verb = "would approve" if dry_run else "approved"
    for approval in approvals:
        click.echo(
            f"{verb} {approval.volume_id} in {approval.region}: the next run may delete exactly "
            f"{len(approval.snapshot_ids)} snapshot(s) there: {', '.join(approval.snapshot_ids)}"
        )
    if dry_run:
        click.echo("dry run: nothing written")


def _print_open_breakers(out: conventions.Output, rows: list[dict[str, Any]]) -> None:
    if out.json:
        out.document(rows)
        return
    if not rows:
        click.echo("No open circuit breaker.")
        return
    table = Table(title="Open circuit breakers")
    for column in ("run", "instance", "volume", "region", "would delete", "approved", "command"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["run_id"],
            str(r["instance"] or "") + (" (orphan)" if r["orphan"] else ""),
            r["volume_id"],
            r["region"],
            str(len(r["would_delete"])),
            "yes (the next run deletes them)" if r["approved"] else "no",
            "-" if r["approved"] else r["approve"],
        )
    out.print(table)


@cli.command()
@click.option("--follow", is_flag=True, help="Wait until the drill ends and show its result; exit 0 only on SUCCEEDED.")
@click.pass_context
def drill(ctx: click.Context, follow: bool) -> None:
    """Start the restore drill now (its state machine, as the weekly schedule does)."""
    out = _out(ctx)
    ops_ = _operations()
    dep = _deployment(ctx)
    arn = ops_.start_drill(dep)
    document: dict[str, Any] = {"execution_arn": arn, "followed": follow, "status": None, "drill": None}
    if not follow:
        if out.json:
            out.document(document)
        else:
            click.echo(f"execution: {arn}")
        return
    out.line(f"execution: {arn}")
    final = ops_.wait_for(dep, arn, interval=_POLL_SECONDS)
    document |= {"status": final["status"], "drill": ops_.drill_result(dep, final)}
    if out.json:
        out.document(document)
    else:
        row = dict.fromkeys(ops_.STATUS_KEYS) | {"breakers": [], "approve": [], "drill": document["drill"]}
        out.print(status_cell(final["status"]))
        for line in _attention(row) if document["drill"] else ["no drill record (the Report step did not run)"]:
            click.echo(line)
    sys.exit(Exit.OK if final["status"] == "SUCCEEDED" else Exit.FAILED)


@cli.command()
@click.pass_context
def settings(ctx: click.Context) -> None:
    """The configuration in force: the settings the deployed functions run with (read-only)."""
    out = _out(ctx)
    found = _operations().settings_in_force(_deployment(ctx))
    if out.json:
        out.document(found)
        return
    table = Table(title=f"Settings in force ({found['source']})")
    for column in ("setting", "value"):
        table.add_column(column)
    for name, value in found["settings"].items():
        table.add_row(name, value if isinstance(value, str) else json.dumps(value))
    out.print(table)


def _restore_module() -> Any:
    from smart_vault_cli import restore

    return restore


def _restore_scope(command: Any) -> Any:
    """Where `points` and `restore` read from: the stack's Region, or --from-region."""
    options = (
        click.option(
            "--from-region",
            help="Read the points in this Region and restore there: a copy Region (default: the stack's).",
        ),
        click.option(
            "--deployment-id",
            help="With --from-region: the deployment's id (its smart-vault:managed-by tag), so that no call "
            "goes to the stack's Region (when it is unreachable). Default: read from the stack.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _vault(ctx: click.Context, from_region: str | None, deployment_id: str | None) -> Any:
    if deployment_id is not None and from_region is None:
        _fail("--deployment-id needs --from-region (without it the stack is read)")
    return _restore_module().open_vault(
        ctx.obj["stack"],
        region=ctx.obj["region"],
        profile=ctx.obj["profile"],
        from_region=from_region,
        deployment_id=deployment_id,
    )


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@cli.command()
@click.argument("instance", required=False)
@_json_alias
@_restore_scope
@click.pass_context
def points(ctx: click.Context, instance: str | None, from_region: str | None, deployment_id: str | None) -> None:
    """Recovery points of INSTANCE (id or Name tag), or of every instance, newest first."""
    out = _out(ctx)
    vault = _vault(ctx, from_region, deployment_id)
    found = _restore_module().points(vault, instance, warn=_warn)
    if out.json:
        out.document([p.to_dict() for p in found])
        return
    table = Table(title=f"Recovery points ({instance or 'all instances'})")
    for column in ("run time", "run id", "instance", "state", "volumes", "copies", "locks", "verified"):
        table.add_column(column)
    for point in found:
        volumes = "\n".join(
            f"{v.device or v.volume_id} {v.size_gib} GiB {v.snapshot_id}"
            + (f" ({v.state})" if v.state != "completed" else "")
            + (" [archive]" if v.storage_tier == "archive" else "")
            for v in point.volumes
        )
        volumes += "".join(f"\n{d} missing" for d in point.missing_devices)
        copies = point.copy_regions
        locks = sorted({v.locked_until for v in point.volumes if v.locked_until})
        table.add_row(
            point.run_time,
            point.run_id,
            point.label,
            status_cell(point.state),
            volumes,
            ", ".join(copies) or "-",
            ", ".join(f"until {t}" for t in locks) or "-",
            point.verified_at or "never",  # by a restore drill (the verified-at tag)
        )
    out.print(table)
    if not found:
        click.echo(f"no recovery point of {instance}" if instance else "no recovery point")


@cli.command()
@click.argument("instance")
@click.option("--at", "at", help="The newest complete point at or before this time (2026-11-26T03:00:00Z).")
@click.option("--run", "run_id", help="The point of this run id (20261126T030000Z).")
@click.option("--latest", is_flag=True, help="The newest complete point (the default).")
@_restore_scope
@click.option("--az", "zone", help="Availability Zone (default: the instance's current one).")
@click.option("--as", "kind", type=click.Choice(["volumes", "ami", "instance"]), default="volumes", show_default=True)
@click.option("--instance-type", help="--as instance: instead of the original's type.")
@click.option("--subnet", "subnet_id", help="--as instance: instead of the original's subnet.")
@click.option("--security-group", "security_groups", multiple=True, help="--as instance: instead of the original's.")
@click.option("--kms-key", help="Encrypt the restored volumes with this key instead of the snapshot's.")
@click.option("--dry-run", is_flag=True, help="Print the plan and every problem; create nothing.")
@click.option("--keep-partial", is_flag=True, help="On failure, keep what was created (default: delete it).")
@click.pass_context
def restore(
    ctx: click.Context,
    instance: str,
    at: str | None,
    run_id: str | None,
    latest: bool,
    from_region: str | None,
    deployment_id: str | None,
    zone: str | None,
    kind: str,
    instance_type: str | None,
    subnet_id: str | None,
    security_groups: tuple[str, ...],
    kms_key: str | None,
    dry_run: bool,
    keep_partial: bool,
) -> None:
    """Restore INSTANCE (id or Name tag) from a recovery point: volumes, an AMI or an instance.

    Exit 0 only when everything restored is available; 2 when the restore is refused or fails
    (what it created is deleted unless --keep-partial)."""
    if sum((at is not None, run_id is not None, latest)) > 1:
        _fail("choose one of --at, --run and --latest")
    module = _restore_module()
    vault = _vault(ctx, from_region, deployment_id)
    found = module.points(vault, instance, warn=_warn)
    point = module.choose(found, instance=instance, at=at, run_id=run_id)
    overrides = module.Overrides(
        instance_type=instance_type, subnet_id=subnet_id, security_group_ids=security_groups, kms_key_id=kms_key
    )
    plan = module.plan(vault, point, kind=kind, zone=zone, overrides=overrides)
    out = _out(ctx)
    # JSON: {"plan", "dry_run", "result"} (docs/operations.md, "JSON output").
    document: dict[str, Any] = {"plan": _plan_document(plan), "dry_run": dry_run, "result": None}
    if not out.json:
        _print_plan(plan)
    if dry_run:
        if out.json:
            out.document(document)
        if plan.problems:
            _fail(f"dry run: {len(plan.problems)} problem(s); nothing was created")
        out.line("dry run: no problem found; nothing was created")
        return
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        console=out.console(stderr=True),
        disable=out.json,
    ) as bar:
        task = bar.add_task("volumes available", total=None, counts="")

        def update(ready: int, total: int) -> None:
            bar.update(task, total=total, completed=ready, counts=f"{ready}/{total}")

        result = module.execute(vault, plan, keep_partial=keep_partial, on_progress=update, interval=_POLL_SECONDS)
    if out.json:
        attach = module.attach_commands(result, instance_id=point.instance_id) if result.volume_ids else []
        created = {"volume_ids": result.volume_ids, "image_id": result.image_id, "instance_id": result.instance_id}
        out.document(document | {"result": created | {"attach_commands": attach}})
        return
    for device, volume_id in sorted(result.volume_ids.items()):
        click.echo(f"restored {device}: {volume_id} (available)")
    if result.volume_ids:
        click.echo(f"attach them (stop the instance first to replace its root volume {point.instance_id}):")
        for line in module.attach_commands(result, instance_id=point.instance_id):
            click.echo(f"  {line}")
    if result.image_id:
        click.echo(f"AMI: {result.image_id}")
    if result.instance_id:
        click.echo(f"instance: {result.instance_id}")


_POLL_SECONDS = 2.0


def _plan_document(plan: Any) -> dict[str, Any]:
    fields = ("kind", "region", "zone", "volumes", "image", "instance", "problems")
    return {"point": plan.point.to_dict(), **{k: getattr(plan, k) for k in fields}}


def _print_plan(plan: Any) -> None:
    point = plan.point
    click.echo(
        f"recovery point: {point.label} run {point.run_id} ({point.run_time}), {point.state}; "
        f"restore as {plan.kind} in {plan.region} {plan.zone or '?'}"
    )
    for params in plan.volumes:
        extras = " ".join(f"{k}={params[k]}" for k in ("VolumeType", "Iops", "Throughput", "KmsKeyId") if k in params)
        click.echo(f"  CreateVolume {params['SnapshotId']} {params['Size']} GiB {extras}")
    if plan.image:
        devices = ", ".join(m["DeviceName"] for m in plan.image["BlockDeviceMappings"])
        click.echo(
            f"  RegisterImage {plan.image['Name']} root {plan.image['RootDeviceName']} ({devices}), "
            f"{plan.image['Architecture']}, boot {plan.image.get('BootMode', 'default')}"
        )
    if plan.instance:
        click.echo(
            f"  RunInstances {plan.instance['InstanceType']} subnet {plan.instance.get('SubnetId', 'default')} "
            f"groups {', '.join(plan.instance.get('SecurityGroupIds', [])) or 'default'}"
        )
    for problem in plan.problems:
        click.echo(f"problem: {problem}")


@cli.command()
@click.option("--execution", "execution", help="Colour by this execution's history.")
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Colour by a simulator report."
)
@click.option("--run", "run_index", default=-1, show_default=True, help="Which run of the report (0-based; -1 last).")
@click.option(
    "-o",
    "--file",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.svg or FILE.png (--output is the format of what is printed, as on every verb).",
)
@click.pass_context
def graph(ctx: click.Context, execution: str | None, report_path: Path | None, run_index: int, output: Path) -> None:
    """Render the workflow (statemachine/) as a picture, coloured by what happened: a drill run
    or execution draws the restore drill's workflow."""
    from smart_vault_cli import graph as pictures

    if report_path is not None:
        picture = pictures.of_report(read_json_file(report_path, "report"), run_index)
    elif execution is not None:
        picture = pictures.of_execution(_deployment(ctx), execution, warn=lambda m: click.echo(f"note: {m}", err=True))
    else:
        picture = pictures.Picture(pictures.load_definition(definition_path()), None, "Smart Vault workflow")
    pictures.render(pictures.to_dot(picture), output)
    out = _out(ctx)
    if out.json:
        out.document({"file": str(output), "title": picture.title})
        return
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("scenario_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON report here.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--verbose", is_flag=True, help="Show the functions' logs.")
@click.pass_context
def simulate(ctx: click.Context, scenario_file: Path, report_path: Path | None, quiet: bool, verbose: bool) -> None:
    """Run the real workflow on an emulated AWS account, offline, and report what happened.

    Exit code 0 when the simulation ran (a FAILED backup run is a result), 2 for an invalid
    scenario or a missing tool (Node.js for IAM enforcement), 3 for an internal error. With
    --output json the report is printed (docs/scenarios.md).
    """
    raw = read_json_file(scenario_file, "scenario")
    try:
        scenario = parse_scenario(raw)
    except ScenarioError as error:
        _fail(f"invalid scenario: {error}")
    if report_path:
        check_writable(report_path, "report")
    from smart_vault_sim.simulator import simulate as run_simulation
    from smart_vault_sim.stack_iam import StackUnavailable

    progress = _silent if quiet else print_progress
    try:
        report: dict[str, Any] = run_simulation(scenario, verbose=verbose, progress=progress)
    except StackUnavailable as error:  # the environment's (no Node.js, no aws-cdk-lib): exit 2
        _fail(" ".join(str(error).split()))
    except Exception as error:  # exit 3: our fault, not the scenario's
        click.echo(f"internal error: {type(error).__name__}: {error}", err=True)
        if verbose:
            raise
        sys.exit(Exit.INTERNAL)
    if report_path:
        write_json_file(report_path, report, "report")
    if _out(ctx).json:
        _out(ctx).document(report)
    elif not quiet:
        print_summary(report, report_path)


def _silent(_line: str) -> None:
    """--quiet: no progress, not even the first synthesis's note."""


cli.add_command(sandbox)

if __name__ == "__main__":
    cli()
