"""What every newcomer-facing CLI command shares: one HTTP call to the Hallmark API, and errors
turned into one readable line (code, message, what to do) with a non-zero exit.

An API error body is ``{"error": {"code", "message", "details"}}``; it is printed as
``error: <code>: <message> (<details>)`` and, when there is one, a ``hint:`` line. Nothing
here prints a Python dict repr or a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from typing import Any, NoReturn

import typer

DEFAULT_API = "http://127.0.0.1:8080"
API_ENV = "HALLMARK_API"
TOKEN_ENV = "HALLMARK_TOKEN"

#: the ``--api`` option every command that calls the API takes
API_OPTION: Any = typer.Option(DEFAULT_API, "--api", envvar=API_ENV, help="the Hallmark API base URL")

#: what to do about an API error code a newcomer is likely to meet
HINTS: dict[str, str] = {
    "unauthorized": "get a token: hallmark local token --role submitter --sub alice (against AWS: your IdP's token)",
    "forbidden": "the token's roles do not allow this; check --role / the token's roles claim",
    "name_owned": "this name belongs to someone else: pick another name or ask its owner for a delegation",
    "not_owner": "only the name's owner (or a superadmin) may do this",
    "version_exists": "that version was released already: bump the version",
    "version_in_flight": "a package of that version is still in flight: wait for it (hallmark submit follows it)",
    "version_lower": "lower than the current version: submit a higher version (or a governed rollback)",
    "approvers_insufficient": "register approvers first (POST /approvers, see the README's approver onboarding)",
    "validation_error": "check the flags / hallmark.toml [package] values against the message",
    "route_not_found": "is --api the Hallmark API base URL?",
}


class CliError(Exception):
    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint


def fail(code: str, message: str, hint: str | None = None, exit_code: int = 2) -> NoReturn:
    print(f"error: {code}: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    raise typer.Exit(exit_code)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_short(v) for v in value)
    return str(value)


def api_error(status: int, body: Any) -> CliError:
    """A CliError from an API answer (any shape: a JSON error, a bare message, nothing)."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or f"http_{status}")
        message = str(err.get("message") or "")
        details = err.get("details")
        if details:
            message += f" ({_short(details)})"
    elif isinstance(body, dict) and "message" in body:
        code, message = f"http_{status}", str(body["message"])
    else:
        code, message = f"http_{status}", "the API answered without a JSON error" if body is None else _short(body)
    return CliError(code, f"{message} [HTTP {status}]", HINTS.get(code))


def call(method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 30,
         extra_headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON or None). Unreachable API: CliError with what to do."""
    headers = {"content-type": "application/json", **(extra_headers or {})}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CliError("api_unreachable", f"cannot reach {url}: {reason}",
                       "start the local cloud (hallmark local serve) or pass --api / set HALLMARK_API") from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, {"message": raw[:200].decode("utf-8", "replace")}


def ok(method: str, url: str, token: str | None = None, body: Any = None,
       extra_headers: dict[str, str] | None = None) -> Any:
    status, answer = call(method, url, token, body, extra_headers=extra_headers)
    if status >= 300:
        raise api_error(status, answer)
    return answer


def pages(url: str, token: str | None, limit: int | None = None) -> Any:
    """Every item of a list route, following ``nextToken`` page after page (at most ``limit``)."""
    from urllib.parse import quote

    got = 0
    next_token: str | None = None
    sep = "&" if "?" in url else "?"
    while True:
        page = ok("GET", url + (f"{sep}nextToken={quote(next_token, safe='')}" if next_token else ""), token)
        for item in page.get("items", []):
            if limit is not None and got >= limit:
                return
            got += 1
            yield item
        next_token = page.get("nextToken")
        if not next_token:
            return


def token_sub(token: str) -> str:
    """The ``sub`` of a bearer token (read, not verified: the API verifies it)."""
    import jwt

    try:
        return str(jwt.decode(token, options={"verify_signature": False})["sub"])
    except (jwt.InvalidTokenError, KeyError):
        raise CliError("bad_token", "the token is not a JWT with a sub", "pass --approver-id") from None


def default_api() -> str:
    return os.environ.get(API_ENV, DEFAULT_API)


def run_cli(fn: Any) -> Any:
    """Call ``fn()``; a CliError or a missing-AWS-configuration error becomes one line and exit 2."""
    try:
        return fn()
    except CliError as exc:
        fail(exc.code, exc.message, exc.hint)
    except Exception as exc:  # botocore's configuration errors, without importing botocore eagerly
        name = type(exc).__name__
        if name in ("NoRegionError", "NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
            fail("aws_not_configured", f"{exc}",
                 "this command talks to AWS directly: set AWS_REGION and credentials (aws configure); against "
                 "`hallmark local serve` use the endpoint, region and credentials it prints at start "
                 "(AWS_ENDPOINT_URL, AWS_REGION=us-east-1, any AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        if name in ("EndpointConnectionError", "ConnectTimeoutError"):
            fail("aws_unreachable", str(exc), "is the AWS endpoint (AWS_ENDPOINT_URL) up?")
        if name == "ClientError":
            error = getattr(exc, "response", {}).get("Error", {})
            fail(f"aws_{error.get('Code', 'error')}", str(error.get("Message") or exc))
        raise


def guarded(fn: Any) -> Any:
    """``fn`` with :func:`run_cli` around it (typer reads the signature through ``__wrapped__``)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_cli(lambda: fn(*args, **kwargs))

    return wrapper


def parse_duration(text: str) -> int:
    """'60s', '5m', '2h', '1d' or plain seconds -> seconds (>= 1)."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if not m or int(m.group(1)) < 1:
        raise CliError("bad_duration", f"{text!r} is not a duration", "write it as 60s, 5m, 2h or 1d")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def register_public_key(api: str, token: str, collection: str, id_field: str, ident: str, key_file: Any) -> Any:
    """POST a P-256 public key (an approver's or a witness's) to ``/<collection>``; a file
    holding a PRIVATE key is refused before anything is sent."""
    pem = key_file.read_text()
    if "PRIVATE KEY" in pem:
        raise CliError("private_key", f"{key_file} holds a PRIVATE key; register the public one",
                       "openssl pkey -in KEY.pem -pubout -out KEY.pub.pem")
    return ok("POST", f"{api.rstrip('/')}/{collection}", token, {id_field: ident, "publicKeyPem": pem})
