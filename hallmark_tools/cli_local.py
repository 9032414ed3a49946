"""`hallmark local serve`: the local cloud behind the HTTP API on 127.0.0.1.

Quiet by default (one start-up block, then nothing but handler crashes); ``-v`` prints every
request and the handlers' INFO logs. At start it writes the public keys of this boot's KMS
signing keys to ``$HALLMARK_HOME/local/keys/<purpose>.pem`` (default ``~/.hallmark``) and the
AWS settings of its moto endpoint to ``$HALLMARK_HOME/local/aws.env``, so ``hallmark audit
verify``, ``fetch`` and ``keys export`` find what they need. Without ``--state`` state lives in
memory: a restart starts from an empty cloud with new KMS keys (the keys directory is rewritten).
With ``--state DIR`` a clean stop saves the state and the KMS keys to DIR and the next start
restores them (hallmark_tools.localcloud.state): the same packages, chains and public keys.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hallmark_tools.localcloud.auth import hallmark_home

if TYPE_CHECKING:
    from hallmark_tools.localcloud.state import LocalState


def local_dir() -> Path:
    return hallmark_home() / "local"


def serve(port: int, aws_port: int, ratification_s: int, verbose: bool, state_dir: Path | None = None) -> None:
    from hallmark_tools.localcloud.state import LocalState, StateError

    banner = sys.stdout
    if not verbose:
        # the handlers' logs and EMF metrics go to file descriptor 1 (Powertools holds its own
        # reference to it): quiet sends fd 1 to /dev/null; the banner keeps a copy; crashes
        # still reach stderr
        sys.stdout.flush()
        banner = os.fdopen(os.dup(1), "w")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        for name in ("werkzeug", "moto", "botocore", "urllib3"):
            logging.getLogger(name).setLevel(logging.ERROR)
    env = {"RATIFICATION_WINDOW_SECONDS": str(ratification_s)}
    for name in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL")]:
        # a shell that sourced a previous boot's aws.env points at a moto server that is gone; the
        # local cloud is its own AWS (in-process), and sets AWS_ENDPOINT_URL_S3 to its new endpoint
        del os.environ[name]
    try:
        state = LocalState(state_dir) if state_dir is not None else None
        _serve(port, aws_port, ratification_s, verbose, state_dir, state, env, banner)
    except StateError as exc:
        from hallmark_tools.cli_api import CliError

        raise CliError("bad_state", str(exc), "start with an empty --state directory (or none)") from None


def _serve(port: int, aws_port: int, ratification_s: int, verbose: bool, state_dir: Path | None,
           state: LocalState | None, env: dict[str, str], banner: Any) -> None:
    from hallmark_tools.export import export_keys
    from hallmark_tools.localcloud.cloud import REGION, LocalCloud
    from hallmark_tools.localcloud.server import free_port, make_server, serve_until_signal

    with LocalCloud(serve_port=aws_port or free_port(), quiet=not verbose, env=env, state=state) as cloud:
        server = make_server(cloud, port)
        keys = export_keys(local_dir() / "keys", cloud.client("kms"))
        endpoint = f"http://127.0.0.1:{cloud.serve_port}"
        aws_env = local_dir() / "aws.env"
        aws_env.write_text(f"export AWS_ENDPOINT_URL={endpoint}\nexport AWS_REGION={REGION}\nexport AWS_DEFAULT_REGION={REGION}\n"
                           "export AWS_ACCESS_KEY_ID=local\nexport AWS_SECRET_ACCESS_KEY=local\n")
        print(f"Hallmark local API on http://127.0.0.1:{port}  (AWS endpoint {endpoint}; Ctrl-C stops)\n"
              f"  public keys of this boot: {keys['audit'].parent}/<purpose>.pem\n"
              f"  AWS settings for keys export / fetch / ops redrive: . {aws_env}\n"
              f"  ratification window: {ratification_s}s\n"
              + (f"  state: {state_dir} ({'restored' if state.restoring else 'new'}; saved at a clean stop)\n"
                 if state is not None and state_dir is not None else "  state: in memory (--state DIR keeps it)\n") +
              "  a token: hallmark local token --role submitter --sub alice", file=banner, flush=True)
        serve_until_signal(server)  # SIGINT/SIGTERM: in-flight requests finish, then the cloud stops
        if state is None:
            print("stopped; the local cloud's state is gone (it lives in memory)", file=sys.stderr)
            return
        saved = state.save(cloud)
        lost = saved["lostExecutions"]
        print(f"stopped; saved {saved['items']} items, {saved['objects']} objects and the KMS keys to {state_dir}"
              + (f"; {len(lost)} running execution(s) not kept (packages awaiting approval stay as they are)"
                 if lost else ""), file=sys.stderr)
