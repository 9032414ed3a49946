"""The CDK app: `cdk synth` / `cdk deploy` (cdk.json points here)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from cdk.hallmark_stack import HallmarkStack
from hallmark_tools.topology import TOPOLOGY


def build_app(app: App | None = None) -> App:
    app = app or App()
    # Server access logs are granted to logging.s3.amazonaws.com by bucket policy, not by the
    # legacy LogDeliveryWrite ACL, so the access-log bucket can keep ACLs disabled.
    app.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
    issuer = app.node.try_get_context("oidcIssuer") or "https://cognito-idp.us-east-1.amazonaws.com/REPLACE_ME"
    audience = app.node.try_get_context("oidcAudience") or "hallmark-api"
    HallmarkStack(
        app, "Hallmark",
        topology=TOPOLOGY,
        oidc_issuer=issuer,
        oidc_audience=[audience],
        env=Environment(account=app.node.try_get_context("account"), region=app.node.try_get_context("region")),
        description="Hallmark: signed manifests, multisig governance, ceremonies, marketplace, audit log",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
