"""Import the running hub's cookie secret, proxy token and crypt key into the program's
generators, so the first `pulumi up` keeps every user logged in and stored auth state readable.

    python -m tools.import_secrets dev --org <org>   # reads jupyter/hub, imports into <org>/dev

The values come from the chart's Secret `hub` in the release namespace (vendor/jupyterhub-4.2.0
templates/hub/secret.yaml: keys `hub.config.JupyterHub.cookie_secret`,
`hub.config.ConfigurableHTTPProxy.auth_token`, `hub.config.CryptKeeper.keys`), read with
`kubectl` into memory. They are never written to disk or printed: the import file is built in
memory and handed to `pulumi import --file /dev/stdin` on a pipe (an id on the command line
would show in the process list), and Pulumi's output is shown with every value masked. Each
value is checked first with `components.hub_secrets.import_id`, which refuses what JupyterHub
would refuse.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eodh_jupyterhub.offline import Recording

ROOT = Path(__file__).resolve().parent.parent
HUB_SECRET = "hub"
# Generator role (components.hub_secrets.GENERATED_SECRETS) -> key of the chart's Secret.
SECRET_KEYS = {
    "cookie-secret": "hub.config.JupyterHub.cookie_secret",
    "proxy-secret-token": "hub.config.ConfigurableHTTPProxy.auth_token",
    "crypt-key": "hub.config.CryptKeeper.keys",
}
COMPONENT = "hub-secrets"
MASK = "[secret]"


class SecretImportError(Exception):
    pass


def values_from_secret(secret: dict[str, Any]) -> dict[str, str]:
    """Role -> value, from a Secret object as `kubectl get -o json` returns it."""
    data = secret.get("data") or {}
    values = {}
    for role, key in SECRET_KEYS.items():
        if key not in data:
            raise SecretImportError(
                f"Secret {HUB_SECRET} has no key {key}: is it the chart's hub Secret?"
            )
        values[role] = base64.b64decode(data[key]).decode()
    return values


def read_live_values(context: str, namespace: str) -> dict[str, str]:
    done = subprocess.run(
        ["kubectl", "--context", context, "-n", namespace, "get", "secret", HUB_SECRET, "-ojson"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SecretImportError(f"kubectl could not read {namespace}/{HUB_SECRET}: {done.stderr}")
    return values_from_secret(json.loads(done.stdout))


def import_document(
    recording: Recording, values: dict[str, str], parent_exists: bool = False
) -> dict[str, Any]:
    """The import file for the program's generators, ids from the live values."""
    from components.hub_secrets import GENERATED_SECRETS, import_id
    from tools.import_plan import program_urn

    by_name = {r.name: r for r in recording.resources}
    component = by_name[COMPONENT]
    resources: list[dict[str, Any]] = []
    document: dict[str, Any] = {"resources": resources}
    if parent_exists:
        document["nameTable"] = {COMPONENT: program_urn(component.urn)}
    else:
        resources.append({"type": component.type, "name": COMPONENT, "component": True})
    for role in GENERATED_SECRETS:
        generator = by_name[f"{COMPONENT}-{role}"]
        resources.append(
            {
                "type": generator.type,
                "name": generator.name,
                "id": import_id(role, values[role]),
                "parent": COMPONENT,
                "version": metadata.version("pulumi-random"),
            }
        )
    return document


def mask(text: str, values: dict[str, str]) -> str:
    for value in sorted(values.values(), key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


def run_import(stack_name: str, document: dict[str, Any], values: dict[str, str]) -> int:
    """`stack_name` is `<org>/<env>` (stack_config.pulumi_stack_name)."""
    command = ["pulumi", "import", "--stack", stack_name, "--file", "/dev/stdin"]
    command += ["--generate-code=false", "--suppress-outputs", "--yes"]
    print("+ " + " ".join(command) + "   # import file on stdin, never on disk", flush=True)
    done = subprocess.run(
        command, input=json.dumps(document), capture_output=True, text=True, cwd=ROOT
    )
    print(mask(done.stdout, values), end="")
    print(mask(done.stderr, values), end="", file=sys.stderr)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack")
    parser.add_argument(
        "--parent-exists",
        action="store_true",
        help=f"the {COMPONENT} component is already in the stack's state",
    )
    parser.add_argument(
        "--org", default=os.environ.get("PULUMI_ORG"), help="Pulumi organisation (PULUMI_ORG)"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    from components.hub_secrets import ImportValueError
    from eodh_jupyterhub.offline import run_stack
    from eodh_jupyterhub.stack_config import (
        StackConfigError,
        kubernetes_context,
        pulumi_stack_name,
    )

    try:
        stack_name = pulumi_stack_name(args.stack, args.org)
        context = kubernetes_context(args.stack)
    except StackConfigError as error:
        print(error, file=sys.stderr)
        return 2
    recording = run_stack(args.stack)
    (release,) = recording.of_type("kubernetes:helm.sh/v3:Release")
    namespace = release.plain_inputs["namespace"]
    try:
        values = read_live_values(context, namespace)
        document = import_document(recording, values, args.parent_exists)
    except (SecretImportError, ImportValueError) as error:
        # The message names the secret and what was expected, never the value.
        print(f"not imported: {error}", file=sys.stderr)
        return 1
    return run_import(stack_name, document, values)


if __name__ == "__main__":
    sys.exit(main())
