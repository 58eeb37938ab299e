"""Every `pulumi ...` command the README, docs/*.md and the workflows show is a real Pulumi CLI
command with real flags, and every one of them uses the one state backend: Pulumi Cloud with its
default per-stack secrets provider (docs/operations.md, "State backend").

The command table is copied from Pulumi's generated CLI reference (spf13/cobra output of the
CLI itself), pulumi/docs `content/docs/iac/cli/commands/<page>.md`, published at
https://www.pulumi.com/docs/iac/cli/commands/<page>/ ; each entry names its page. A command or
flag that is not in the table fails with the page to read, so a new one is looked up, not
guessed. The workflows' `pulumi/actions` steps are checked as the CLI command they run and
against the action's inputs (pulumi/actions `action.yml`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
REFERENCE = "https://www.pulumi.com/docs/iac/cli/commands/"
CLOUD_URL = "https://api.pulumi.com"


@dataclass(frozen=True)
class Command:
    page: str  # the reference page, e.g. pulumi_stack_init
    flags: dict[str, bool]  # "--name"/"-x" -> takes a value
    positionals: int  # how many positional arguments the usage line allows
    children: frozenset[str] = field(default_factory=frozenset)


def flags(*specs: str) -> dict[str, bool]:
    """`"-s/--stack=" ` is a flag with a value and its shorthand; no `=`: a boolean flag.
    `"--refresh?"` takes a value only as `--refresh=value` (cobra's NoOptDefVal)."""
    table: dict[str, bool] = {}
    for spec in specs:
        takes = spec.endswith("=")
        names = spec.rstrip("=?").split("/")
        for name in names:
            table[name] = takes
    return table


# Options inherited from `pulumi` by every command (page: pulumi).
GLOBAL = flags(
    "--color=",
    "-C/--cwd=",
    "--disable-integrity-checking",
    "-e/--emoji",
    "-Q/--fully-qualify-stack-names",
    "-h/--help",
    "--logflow",
    "--logtostderr",
    "--memprofilerate=",
    "--non-interactive",
    "--otel-traces=",
    "--profiling=",
    "--tracing=",
    "-v/--verbose=",
)
# `pulumi config` passes these to its subcommands (page: pulumi_config_get, "inherited").
CONFIG_INHERITED = flags("--config-file=", "-s/--stack=")
# Flags shared by `pulumi up` and `pulumi preview` (pages: pulumi_up, pulumi_preview).
UPDATE_FLAGS = flags(
    "--attach-debugger",
    "-c/--config=",
    "--config-file=",
    "--config-path",
    "-d/--debug",
    "--diff",
    "--expect-no-changes",
    "-j/--json",
    "-m/--message=",
    "-p/--parallel=",
    "--policy-pack=",
    "--policy-pack-config=",
    "-r/--refresh?",
    "--replace=",
    "--show-config",
    "--show-policy-remediations",
    "--show-reads",
    "--show-replacement-steps",
    "--show-sames",
    "-s/--stack=",
    "--suppress-outputs",
    "--suppress-permalink?",
    "--suppress-progress",
    "-t/--target=",
    "--target-dependents",
    "--target-replace=",
)

TOP_LEVEL = frozenset(
    [
        "about",
        "api",
        "cancel",
        "config",
        "console",
        "convert",
        "deployment",
        "destroy",
        "do",
        "env",
        "gen-completion",
        "import",
        "insights",
        "install",
        "login",
        "logout",
        "logs",
        "neo",
        "new",
        "org",
        "package",
        "plugin",
        "policy",
        "preview",
        "project",
        "refresh",
        "schema",
        "stack",
        "state",
        "template",
        "up",
        "version",
        "watch",
        "whoami",
    ]
)

CLI: dict[tuple[str, ...], Command] = {
    (): Command("pulumi", {}, 0, TOP_LEVEL),
    ("up",): Command(
        "pulumi_up",
        {
            **UPDATE_FLAGS,
            **flags("--continue-on-error", "--secrets-provider=", "--show-full-output"),
            **flags("-f/--skip-preview", "-y/--yes"),
        },
        # The usage is `pulumi up [template|url]`; this project never deploys a template, so
        # a word after `up` is a mistake here (e.g. `pulumi up dev` for a stack name).
        0,
    ),
    ("preview",): Command(
        "pulumi_preview",
        {**UPDATE_FLAGS, **flags("--import-file=", "--show-secrets")},
        0,
    ),
    ("login",): Command(
        "pulumi_login",
        flags(
            "-c/--cloud-url=",
            "--default-org=",
            "--insecure",
            "--interactive",
            "-l/--local",
            "--oidc-expiration=",
            "--oidc-org=",
            "--oidc-team=",
            "--oidc-token=",
            "--oidc-user=",
        ),
        1,
    ),
    ("refresh",): Command(
        "pulumi_refresh",
        flags(
            "--clear-pending-creates",
            "-c/--config=",
            "--config-file=",
            "--config-path",
            "-d/--debug",
            "--diff",
            "-x/--exclude=",
            "--exclude-dependents",
            "--expect-no-changes",
            "--import-pending-creates=",
            "-j/--json",
            "-m/--message=",
            "-p/--parallel=",
            "--preview-only",
            "--run-program",
            "--show-replacement-steps",
            "--show-sames",
            "--skip-pending-creates",
            "-f/--skip-preview",
            "-s/--stack=",
            "--suppress-outputs",
            "--suppress-permalink?",
            "--suppress-progress",
            "-t/--target=",
            "--target-dependents",
            "--urns",
            "-y/--yes",
        ),
        0,
    ),
    ("whoami",): Command("pulumi_whoami", flags("-j/--json", "-v/--verbose"), 0),
    ("config",): Command(
        "pulumi_config",
        {**CONFIG_INHERITED, **flags("-j/--json", "--open", "--show-secrets")},
        0,
        frozenset({"cp", "env", "get", "refresh", "rm", "rm-all", "set", "set-all"}),
    ),
    ("config", "get"): Command(
        "pulumi_config_get", {**CONFIG_INHERITED, **flags("-j/--json", "--open", "--path")}, 1
    ),
    ("config", "set"): Command(
        "pulumi_config_set",
        {**CONFIG_INHERITED, **flags("--path", "--plaintext", "--secret", "--type=")},
        2,
    ),
    ("stack",): Command(
        "pulumi_stack",
        flags("-i/--show-ids", "--show-name", "--show-secrets", "-u/--show-urns", "-s/--stack="),
        0,
        frozenset(
            [
                "change-secrets-provider",
                "export",
                "graph",
                "history",
                "import",
                "init",
                "ls",
                "output",
                "rename",
                "rm",
                "select",
                "tag",
                "unselect",
            ]
        ),
    ),
    ("stack", "init"): Command(
        "pulumi_stack_init",
        flags(
            "--copy-config-from=", "--no-select", "--secrets-provider=", "-s/--stack=", "--teams="
        ),
        1,
    ),
    ("stack", "select"): Command(
        "pulumi_stack_select", flags("-c/--create", "--secrets-provider=", "-s/--stack="), 1
    ),
    ("stack", "output"): Command(
        "pulumi_stack_output",
        flags("-j/--json", "--shell", "--show-secrets", "-s/--stack="),
        1,
    ),
    ("stack", "change-secrets-provider"): Command(
        "pulumi_stack_change-secrets-provider", flags("-s/--stack="), 1
    ),
}

# pulumi/actions action.yml inputs, and the CLI command each `command:` runs.
ACTION_INPUTS = frozenset(
    [
        "command",
        "stack-name",
        "work-dir",
        "comment-on-pr",
        "github-token",
        "cloud-url",
        "secrets-provider",
        "parallel",
        "message",
        "configMap",
        "expect-no-changes",
        "diff",
        "replace",
        "target",
        "target-dependents",
        "policyPacks",
        "policyPackConfigs",
        "refresh",
        "upsert",
        "edit-pr-comment",
        "color",
        # v6.6.1 action.yml: the diff in the job's summary (the drift workflow).
        "comment-on-summary",
    ]
)
ACTION_COMMANDS = {"up": "up", "update": "up", "preview": "preview", "refresh": "refresh"}


@dataclass
class Invocation:
    where: str
    argv: list[str]

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


@dataclass
class Parsed:
    path: tuple[str, ...]
    options: dict[str, str | None]
    positionals: list[str]


def check(argv: list[str]) -> tuple[Parsed | None, list[str]]:
    """Parse argv (argv[0] == "pulumi") as the CLI would; return the parse and the problems."""
    assert argv[0] == "pulumi"
    path: tuple[str, ...] = ()
    i = 1
    while i < len(argv) and argv[i] in CLI[path].children:
        path = (*path, argv[i])
        i += 1
        if path not in CLI:
            return None, [
                f"`pulumi {' '.join(path)}` exists but its flags are not tabulated here: "
                f"add them from {REFERENCE}pulumi_{'_'.join(path)}/"
            ]
    if not path:
        return None, [f"`pulumi {argv[1] if len(argv) > 1 else ''}` is not a Pulumi command"]
    command = CLI[path]
    known = {**GLOBAL, **command.flags}
    options: dict[str, str | None] = {}
    positionals: list[str] = []
    problems: list[str] = []
    page = f"{REFERENCE}{command.page}/"
    while i < len(argv):
        token = argv[i]
        i += 1
        if token.startswith("-") and token != "-":
            name, eq, value = token.partition("=")
            if name not in known:
                problems.append(f"`pulumi {' '.join(path)}` has no flag {name} ({page})")
                continue
            takes = known.get(name, False)
            if eq:
                options[name] = value
            elif takes:
                if i >= len(argv):
                    problems.append(f"{name} needs a value ({page})")
                    break
                options[name] = argv[i]
                i += 1
            else:
                options[name] = None
        else:
            positionals.append(token)
    if len(positionals) > command.positionals:
        problems.append(
            f"`pulumi {' '.join(path)}` takes at most {command.positionals} argument(s), "
            f"got {positionals} ({page})"
        )
    return Parsed(path, options, positionals), problems


# --- finding the commands ------------------------------------------------------------------

START = re.compile(r"(?<![\w./-])pulumi(?=[ \t]+[a-z-])")
SHELL_FENCES = {"", "sh", "bash", "shell", "console", "zsh"}


def command_at(text: str, start: int) -> str:
    """The shell words of the command starting at `start`, up to the first unquoted `|`, `;`,
    `&`, `)` closing an enclosing `$(`, `#` comment, backtick or end of line."""
    quote: str | None = None
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "$" and quote == '"' and text.startswith("$(", i):
                depth += 1
                i += 1
            elif ch == ")" and quote == '"' and depth:
                depth -= 1
        elif ch in "'\"":
            quote = ch
        elif text.startswith("$(", i):
            depth += 1
            i += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (ch in "|;&`\n" or (ch == "#" and i > start and text[i - 1].isspace())):
            break
        i += 1
    return text[start:i]


def commands_in(text: str, where: str) -> Iterator[Invocation]:
    for match in START.finditer(text):
        snippet = command_at(text, match.start())
        try:
            argv = shlex.split(snippet)
        except ValueError as error:
            raise AssertionError(f"{where}: cannot split {snippet!r}: {error}") from None
        yield Invocation(where, argv)


def markdown_commands(path: Path) -> Iterator[Invocation]:
    text = path.read_text()
    prose: list[str] = []
    fence: str | None = None
    block: list[str] = []
    opened = 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence, block, opened = stripped[3:].strip().lower(), [], number
            else:
                if fence in SHELL_FENCES:
                    yield from commands_in("\n".join(block), f"{path.name}:{opened}")
                fence = None
            continue
        if fence is None:
            prose.append(line)
        else:
            block.append(line)
    for span in re.findall(r"`([^`]+)`", " ".join(prose)):
        yield from commands_in(span, f"{path.name} `{span}`")


def workflow_commands(path: Path) -> Iterator[Invocation]:
    text = path.read_text()
    for line in text.splitlines():
        comment = line.partition("#")[2] if line.lstrip().startswith("#") else ""
        for span in re.findall(r"`([^`]+)`", comment):
            yield from commands_in(span, f"{path.name} `{span}`")
    workflow = yaml.safe_load(text)
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield from commands_in(str(step.get("run", "")), f"{path.name}:{job_name}")
            if str(step.get("uses", "")).startswith("pulumi/actions@"):
                yield action_invocation(f"{path.name}:{job_name}", step)


def action_invocation(where: str, step: dict) -> Invocation:
    inputs = step.get("with", {})
    unknown = set(inputs) - ACTION_INPUTS
    assert not unknown, f"{where}: pulumi/actions has no input(s) {sorted(unknown)}"
    argv = ["pulumi", ACTION_COMMANDS.get(inputs["command"], inputs["command"])]
    argv += ["--stack", inputs["stack-name"]]
    for pack in str(inputs.get("policyPacks", "")).split():
        argv += ["--policy-pack", pack]
    if str(inputs.get("refresh", "false")).lower() == "true":
        argv.append("--refresh")
    if str(inputs.get("expect-no-changes", "false")).lower() == "true":
        argv.append("--expect-no-changes")
    if inputs.get("cloud-url"):
        argv += ["login", inputs["cloud-url"]]  # so the backend check sees it
    return Invocation(where, argv)


def all_invocations() -> list[Invocation]:
    found: list[Invocation] = []
    for path in DOCS:
        found.extend(markdown_commands(path))
    for path in WORKFLOWS:
        found.extend(workflow_commands(path))
    return found


# --- the backend ---------------------------------------------------------------------------

# A login to a state bucket, a local or a self-hosted backend, in prose or code.
OTHER_BACKEND = re.compile(
    r"pulumi\s+login\s+(?:-\S+\s+)*\S*(s3|gs|azblob|file|postgres|https?)://(?!api\.pulumi\.com)"
    r"|pulumi\s+login\s+(-l|--local)\b|PULUMI_BACKEND_URL"
)


def backend_problems(parsed: Parsed) -> list[str]:
    problems = []
    if parsed.path == ("login",):
        url = parsed.positionals[0] if parsed.positionals else None
        cloud = parsed.options.get("--cloud-url", parsed.options.get("-c"))
        for value in (url, cloud):
            if value not in (None, CLOUD_URL):
                problems.append(f"logs in to {value}, not Pulumi Cloud")
        if "--local" in parsed.options or "-l" in parsed.options:
            problems.append("logs in to the local backend, not Pulumi Cloud")
    provider = parsed.options.get("--secrets-provider")
    if provider is not None and provider != "default":
        problems.append(f"secrets provider {provider}: stacks use Pulumi Cloud's default")
    if parsed.path == ("stack", "change-secrets-provider") and parsed.positionals not in (
        [],
        ["default"],
    ):
        problems.append(f"changes to {parsed.positionals}: stacks use Pulumi Cloud's default")
    return problems


def problems_of(invocation: Invocation) -> list[str]:
    parsed, problems = check(invocation.argv)
    if parsed is not None:
        problems += backend_problems(parsed)
    return [f"{invocation.where}: {invocation.text}: {p}" for p in problems]


# --- tests ---------------------------------------------------------------------------------


def test_the_docs_and_workflows_show_pulumi_commands():
    """The finder sees the commands people run (if it saw none, the next test proves nothing)."""
    shown = {tuple(i.argv[:3]) for i in all_invocations()}
    assert ("pulumi", "login") in {s[:2] for s in shown}
    assert ("pulumi", "stack", "init") in shown
    assert ("pulumi", "preview", "--stack") in shown  # the PR workflow's action step
    assert ("pulumi", "up", "--stack") in shown  # the deploy workflow's action steps


def test_every_pulumi_command_shown_is_real_and_uses_pulumi_cloud():
    problems = [p for i in all_invocations() for p in problems_of(i)]
    assert problems == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("pulumi config set --secrets-provider awskms://x", "has no flag --secrets-provider"),
        ("pulumi login s3://state-bucket", "not Pulumi Cloud"),
        ("pulumi login --local", "not Pulumi Cloud"),
        ("pulumi stack init dev --secrets-provider awskms://alias/k", "Pulumi Cloud's default"),
        ("pulumi stack change-secrets-provider passphrase", "Pulumi Cloud's default"),
        ("pulumi stack select", None),
        ("pulumi stak ls", "is not a Pulumi command"),
        ("pulumi up dev", "takes at most 0"),
        ("pulumi preview --policy-pack", "needs a value"),
        ("pulumi stack export", "flags are not tabulated"),
        ("pulumi preview --refresh -s dev --diff", None),
        ('CTX=$(pulumi config get kubernetes:context -s "$STACK")', None),
        ("pulumi up --replace \"$(pulumi stack --show-urns | grep -o 'urn:x')\"", None),
        ("pulumi whoami -v  # prints the backend", None),
    ],
)
def test_the_checker_refuses_what_the_cli_refuses(line: str, problem: str | None):
    invocations = list(commands_in(line, "example"))
    assert invocations, line
    found = [p for i in invocations for p in problems_of(i)]
    if problem is None:
        assert found == []
    else:
        assert any(problem in p for p in found), found


@pytest.mark.parametrize(
    ("line", "mentions"),
    [
        ("pulumi login s3://<state-bucket>        # or the Pulumi Cloud backend", True),
        ("pulumi login --cloud-url https://pulumi.example.org", True),
        ("Set PULUMI_BACKEND_URL to the bucket", True),
        ("pulumi login --local", True),
        ("pulumi login https://api.pulumi.com", False),
        ('aws s3 ls "s3://$BUCKET/$WS/" --recursive', False),
    ],
)
def test_the_backend_check_sees_other_logins(line: str, mentions: bool):
    assert bool(OTHER_BACKEND.search(line)) is mentions


def test_no_other_backend_is_mentioned():
    for path in [*DOCS, *WORKFLOWS]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not OTHER_BACKEND.search(line), f"{path.name}:{number}: {line.strip()}"


def test_workflows_log_in_to_pulumi_cloud_with_the_org_s_stacks():
    steps = [
        (path.name, step)
        for path in WORKFLOWS
        for job in yaml.safe_load(path.read_text())["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("pulumi/actions@")
    ]
    # The deploy of every stack (one reusable workflow) and the PR preview, at least.
    assert {"deploy-environment.yml", "pull-request.yml"} <= {name for name, _ in steps}
    for name, step in steps:
        assert step["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}", name
        assert "cloud-url" not in step["with"], name
        assert "secrets-provider" not in step["with"], name
        assert step["with"]["stack-name"].startswith("${{ vars.PULUMI_ORG }}/"), name


def test_stacks_use_pulumi_cloud_s_default_secrets_provider():
    """A stack file with secretsprovider/encryptedkey uses a KMS key; encryptionsalt, a
    passphrase. The default provider writes none of them."""
    for path in sorted(ROOT.glob("Pulumi.*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        assert not {"secretsprovider", "encryptedkey", "encryptionsalt"} & set(data), path.name


def test_the_backend_is_written_down_once_and_linked():
    operations = (ROOT / "docs" / "operations.md").read_text()
    readme = (ROOT / "README.md").read_text()
    assert operations.count("\n## State backend\n") == 1
    assert "(docs/operations.md#state-backend)" in readme
    headings = [line for path in DOCS for line in path.read_text().splitlines()]
    assert sum(h.strip().lower() == "## state backend" for h in headings) == 1


# --- stack names and the marker function's runbook -------------------------------------------

FULL_STACK = re.compile(r"^(<org>|\$\{\{ vars\.PULUMI_ORG \}\})/.+$")
STACK_VARIABLE = re.compile(r'^STACK="?([^"\s]+)"?', re.M)


def stack_name_problems(invocations: list[Invocation], texts: dict[str, str]) -> list[str]:
    """Pulumi Cloud resolves a bare stack name in the user's default organisation, while CI
    and the docs mean `<org>/<env>` (issue 17 §4): every `-s`/`--stack` shown is the full name,
    directly or through a `STACK=` the same document sets to one."""
    problems = []
    for invocation in invocations:
        parsed, _ = check(invocation.argv)
        if parsed is None:
            continue
        for flag in ("-s", "--stack"):
            value = parsed.options.get(flag)
            if value is None:
                continue
            if value == "$STACK":
                text = texts.get(invocation.where.split(":")[0].split(" ")[0], "")
                value = next(iter(STACK_VARIABLE.findall(text)), "$STACK (never set)")
            if not FULL_STACK.match(value):
                problems.append(f"{invocation.where}: {invocation.text}: stack {value}")
    return problems


def test_every_stack_shown_is_the_full_org_name():
    texts = {path.name: path.read_text() for path in [*DOCS, *WORKFLOWS]}
    assert stack_name_problems(all_invocations(), texts) == []


@pytest.mark.parametrize(
    ("text", "line", "bad"),
    [
        ("", "pulumi stack output hubUrl --stack prod", True),
        ("", "pulumi up -s dev", True),
        ("STACK=prod\n", 'pulumi config get x -s "$STACK"', True),
        ('STACK="<org>/prod"\n', 'pulumi config get x -s "$STACK"', False),
        ("", "pulumi stack output hubUrl --stack <org>/<env>", False),
    ],
)
def test_the_stack_name_check_refuses_a_bare_name(text: str, line: str, bad: bool):
    invocations = list(commands_in(line, "doc.md:1"))
    assert bool(stack_name_problems(invocations, {"doc.md": text})) is bad


def test_the_marker_runbook_replays_with_the_tool_and_reads_the_function_s_own_log_group():
    """The function logs to its own group (components/marker_function.py `logging_config`),
    and re-sending an event stops at the marker its first attempt created (412) and drops the
    function's own `s3keep/unmarked-markers` records: the alarms' and smoke's runbook must
    replay with tools.replay_markers and find the log group from the function."""
    for path in DOCS:
        text = path.read_text()
        assert "/aws/lambda/" not in text, path.name
        assert "aws lambda invoke" not in text, path.name
    runbook = (ROOT / "docs" / "troubleshooting.md").read_text()
    section = runbook.split("## Marker function failing", 1)[1].split("\n## ", 1)[0]
    assert 'python -m tools.replay_markers --queue-url "$QUEUE"' in section
    assert "--query LoggingConfig.LogGroup" in section
