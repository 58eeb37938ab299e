"""The hub's cookie secret, proxy token and crypt key, generated once and kept in state.

The chart can generate these itself only through Helm `lookup`, which sees nothing when the
chart is rendered without the live cluster and then regenerates them, logging everybody out
(z2jh issue 2887). A RandomId without keepers never changes on `pulumi up`; rotating one is a
deliberate `pulumi up --replace <urn>` (see the README's operations section).
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

# 32 bytes = 64 hex characters: the size JupyterHub asks for each of the three.
SECRET_BYTES = 32
GENERATED_SECRETS = ("cookie-secret", "proxy-secret-token", "crypt-key")


class GeneratedHubSecrets(pulumi.ComponentResource):
    cookie_secret: pulumi.Output[str]
    proxy_secret_token: pulumi.Output[str]
    crypt_key: pulumi.Output[str]

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("eodh:secrets:GeneratedHubSecrets", name, None, opts)
        values = {}
        for role in GENERATED_SECRETS:
            generated = random.RandomId(
                f"{name}-{role}",
                byte_length=SECRET_BYTES,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # RandomId's outputs are not secret by default; these must never reach
                    # state, logs or previews in clear text.
                    additional_secret_outputs=["hex", "b64_std", "b64_url", "dec", "id"],
                ),
            )
            # Already secret through additional_secret_outputs; Output.secret keeps it so
            # under mocks too, which drop that option.
            values[role] = generated.hex.apply(pulumi.Output.secret)
        self.cookie_secret = values["cookie-secret"]
        self.proxy_secret_token = values["proxy-secret-token"]
        self.crypt_key = values["crypt-key"]
        self.register_outputs(
            {
                "cookie_secret": self.cookie_secret,
                "proxy_secret_token": self.proxy_secret_token,
                "crypt_key": self.crypt_key,
            }
        )
