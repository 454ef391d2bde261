"""`make bench` writes reports/ and leaves the published docs/benchmarks.md alone unless asked
(`make bench-docs`, `--docs`); its page gives exact figures and its plot the whole run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smart_vault_sim import bench

ROOT = Path(__file__).resolve().parents[2]


def test_bench_writes_reports_by_default_and_leaves_docs_alone(tmp_path):
    # Given the published page
    published = (ROOT / "docs" / "benchmarks.md").read_text()
    # When a tiny fleet is benchmarked from a working directory, as `make bench` runs it
    result = subprocess.run(
        [sys.executable, "-m", "smart_vault_sim.bench", "3:30", "--redrive", "4:1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    # Then the page and the plot are in reports/ there, with this run's figures
    page = (tmp_path / "reports" / "benchmarks.md").read_text()
    assert "| 3 instances, 30-second snapshots |" in page
    assert "A night of 4 instances in which 1 are refused CreateSnapshots" in page
    assert (tmp_path / "reports" / "benchmarks.png").stat().st_size > 0
    assert "wrote reports/benchmarks.md" in result.stdout
    # And docs/ is as it was
    assert (ROOT / "docs" / "benchmarks.md").read_text() == published


@pytest.mark.parametrize(
    ("argv", "out", "cases", "redrive"),
    [
        ([], bench.REPORTS, bench.CASES, (bench.REDRIVE_FLEET, bench.REDRIVE_FAILED)),
        (["--docs"], bench.DOCS, bench.CASES, (bench.REDRIVE_FLEET, bench.REDRIVE_FAILED)),
        (["--out", "elsewhere", "2000:3600", "500"], Path("elsewhere"), ((2000, 3600), (500, 3600)), (1000, 10)),
        (["--redrive", "off", "10:30"], bench.REPORTS, ((10, 30),), None),
    ],
)
def test_bench_arguments(argv, out, cases, redrive):
    args = bench.parse_args(argv)
    assert (args.out, args.cases, args.redrive) == (out, cases, redrive)


@pytest.mark.parametrize("argv", [["--docs", "--out", "x"], ["many"], ["--redrive", "10"], ["--redrive", "a:b"]])
def test_bad_bench_arguments_are_refused_in_one_line_pointing_to_help(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.parse_args(argv)
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and line.endswith("(python -m smart_vault_sim.bench --help)")


@pytest.fixture(scope="module")
def measured():
    m = bench.measure(6, snapshot_seconds=bench.QUICK_SNAPSHOT_SECONDS)
    assert m["status"] == "SUCCEEDED"
    return m


def test_a_target_missed_by_a_hair_shows_the_measured_value_and_not_the_bound(measured):
    # Given the 10,000-instance case measured one DescribeSnapshots over three per instance
    # (the orphan scan), 30,001 calls
    m = {**measured, "instances": 10000, "describe_snapshots": 30001, "transitions": 60000}
    verdicts = {name.split(": ", 1)[1]: (shown, met) for name, shown, met in bench.targets([m])}
    # Then the page says 3.0001 and why it is not met, never "3.00 not met"
    assert verdicts["<= 3 DescribeSnapshots per instance"] == ("3.0001 (30,001 / 10,000)", False)
    assert verdicts["<= 7 state transitions per instance"] == ("6 (60,000 / 10,000)", True)
    assert "| DescribeSnapshots / instance | 3.0001 |" in bench.markdown([m])


def test_rounded_figures_keep_the_side_of_their_bound():
    assert bench.beside(79.996, 80) == "79.996"  # 80.00 would read as met
    assert bench.beside(900.4, 900, decimals=0) == "900.4"
    assert bench.beside(1.8937, 3) == "1.89"
    assert bench.exact(1, 3) == "~0.333333"


def test_the_plot_covers_the_whole_run(measured, tmp_path):
    # The run goes on after its last snapshot completes (Prune, Notify): the x axis reaches its end
    figure = bench.plot([measured], tmp_path / "benchmarks.png")
    assert figure.axes[0].get_xlim()[1] * 60 >= measured["virtual_seconds"]
    assert measured["virtual_seconds"] > max(measured["timeline"].completions)
