"""Run the CLI in-process and capture its exit code and output (shared by the CLI-level tests)."""
from ramba.evals.cli import main


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `ramba-eval ARGV`; a command that returns without SystemExit gives 0."""
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err
