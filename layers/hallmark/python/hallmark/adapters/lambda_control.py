"""``LambdaControl`` and ``Monitoring`` (``hallmark.deploy.ports``) over boto3: Lambda, CloudWatch
Logs, CloudWatch alarms and the operators' SNS topic. Only functions named ``hallmark-app-*``
are touched (the deployer's IAM role is limited the same way)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hallmark.deploy.models import MANAGED_PREFIX
from hallmark.deploy.ports import AlarmHistoryUnavailable, AliasState, CodeRef, FunctionSpec, LiveConfig

#: Error codes a backend answers for an operation it does not implement (moto: 404 "Not yet
#: implemented"); the call is then recorded as skipped, never as done.
_UNIMPLEMENTED = frozenset({"404", "NotImplemented", "UnknownOperationException"})


def _managed(name: str) -> str:
    if not name.startswith(MANAGED_PREFIX):
        raise ValueError(f"{name} is not a Hallmark-managed function ({MANAGED_PREFIX}*)")
    return name


def _code(code: CodeRef) -> dict[str, str]:
    out = {"S3Bucket": code.bucket, "S3Key": code.key}
    if code.version_id:
        out["S3ObjectVersion"] = code.version_id
    return out


def _code_of(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class BotoLambdaControl:
    """``code_signing_config_arn``: attached to every function created (the CDK's Enforce-mode
    config when the operator supplied an AWS Signer profile)."""

    def __init__(self, lam: Any, code_signing_config_arn: str | None = None) -> None:
        self.lam = lam
        self.code_signing_config_arn = code_signing_config_arn

    def _settle(self, name: str) -> None:
        """Wait until the last update finished (Lambda refuses the next change meanwhile)."""
        waiter = self.lam.get_waiter("function_updated_v2")
        waiter.wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def config(self, name: str, qualifier: str = "$LATEST") -> LiveConfig | None:
        try:
            c = self.lam.get_function_configuration(FunctionName=_managed(name), Qualifier=qualifier)
        except ClientError as exc:
            if _code_of(exc) == "ResourceNotFoundException":
                return None
            raise
        return LiveConfig(code_sha256=c["CodeSha256"], memory_mib=int(c["MemorySize"]),
                          environment=dict((c.get("Environment") or {}).get("Variables") or {}),
                          layers=tuple(layer["Arn"] for layer in c.get("Layers") or []),
                          ephemeral_mib=(c.get("EphemeralStorage") or {}).get("Size"))

    def create(self, spec: FunctionSpec, code: CodeRef) -> None:
        signing = {"CodeSigningConfigArn": self.code_signing_config_arn} if self.code_signing_config_arn else {}
        self.lam.create_function(
            FunctionName=_managed(spec.name), Runtime=spec.runtime, Handler=spec.handler, Role=spec.role_arn,
            Code=_code(code), MemorySize=spec.memory_mib, EphemeralStorage={"Size": spec.ephemeral_mib},
            Environment={"Variables": spec.environment}, Tags=spec.tags, Publish=False, PackageType="Zip",
            **signing)
        self.lam.get_waiter("function_active_v2").wait(FunctionName=spec.name,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def update_code(self, name: str, code: CodeRef) -> None:
        self.lam.update_function_code(FunctionName=_managed(name), Publish=False, **_code(code))
        self._settle(name)

    def configure(self, spec: FunctionSpec) -> None:
        self.lam.update_function_configuration(
            FunctionName=_managed(spec.name), Runtime=spec.runtime, Handler=spec.handler, Role=spec.role_arn,
            MemorySize=spec.memory_mib, EphemeralStorage={"Size": spec.ephemeral_mib},
            Environment={"Variables": spec.environment}, Layers=[])
        self._settle(spec.name)

    def publish(self, name: str) -> tuple[str, str]:
        v = self.lam.publish_version(FunctionName=_managed(name))
        return str(v["Version"]), str(v["CodeSha256"])

    def delete_version(self, name: str, version: str) -> None:
        if version == "$LATEST":
            raise ValueError("refusing to delete $LATEST")
        self.lam.delete_function(FunctionName=_managed(name), Qualifier=version)

    def alias(self, name: str, alias: str) -> AliasState | None:
        try:
            a = self.lam.get_alias(FunctionName=_managed(name), Name=alias)
        except ClientError as exc:
            if _code_of(exc) == "ResourceNotFoundException":
                return None
            raise
        weights = (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return AliasState(str(a["FunctionVersion"]), {str(k): float(v) for k, v in weights.items()})

    def route(self, name: str, alias: str, version: str, extra: tuple[str, float] | None = None) -> None:
        routing = {"AdditionalVersionWeights": {extra[0]: extra[1]} if extra else {}}
        if self.alias(name, alias) is None:
            self.lam.create_alias(FunctionName=_managed(name), Name=alias, FunctionVersion=version,
                                  RoutingConfig=routing)
        else:
            self.lam.update_alias(FunctionName=_managed(name), Name=alias, FunctionVersion=version,
                                  RoutingConfig=routing)

    def remove_alias(self, name: str, alias: str) -> None:
        try:
            self.lam.delete_alias(FunctionName=_managed(name), Name=alias)
        except ClientError as exc:
            if _code_of(exc) != "ResourceNotFoundException":
                raise

    def reserve_concurrency(self, name: str, count: int) -> None:
        self.lam.put_function_concurrency(FunctionName=_managed(name), ReservedConcurrentExecutions=count)

    def provision_concurrency(self, name: str, alias: str, count: int) -> str | None:
        try:
            self.lam.put_provisioned_concurrency_config(FunctionName=_managed(name), Qualifier=alias,
                                                        ProvisionedConcurrentExecutions=count)
        except ClientError as exc:
            if _code_of(exc) in _UNIMPLEMENTED:
                return f"not implemented by this backend ({exc.response.get('Error', {}).get('Message')})"
            raise
        return None

    def tag(self, name: str, tags: dict[str, str]) -> None:
        arn = self.lam.get_function_configuration(FunctionName=_managed(name))["FunctionArn"]
        self.lam.tag_resource(Resource=arn, Tags=tags)


#: (metric, statistic / extended statistic, threshold, comparison) per alarm kind.
_ALARMS: dict[str, dict[str, Any]] = {
    "errors": {"MetricName": "Errors", "Statistic": "Sum", "Threshold": 1.0},
    "throttles": {"MetricName": "Throttles", "Statistic": "Sum", "Threshold": 1.0},
    "duration_p95": {"MetricName": "Duration", "ExtendedStatistic": "p95", "Threshold": 10_000.0},
}


class CloudWatchMonitoring:
    def __init__(self, logs: Any, cloudwatch: Any, sns: Any, topic_arn: str) -> None:
        self.logs, self.cw, self.sns, self.topic = logs, cloudwatch, sns, topic_arn

    def retain_logs(self, function: str, days: int) -> None:
        group = f"/aws/lambda/{_managed(function)}"
        try:
            self.logs.create_log_group(logGroupName=group)
        except ClientError as exc:
            if _code_of(exc) != "ResourceAlreadyExistsException":
                raise
        self.logs.put_retention_policy(logGroupName=group, retentionInDays=days)

    def put_alarms(self, function: str, version: str, kinds: tuple[str, ...]) -> list[str]:
        names = []
        dims = [{"Name": "FunctionName", "Value": _managed(function)},
                {"Name": "Resource", "Value": f"{function}:{version}"}]
        for kind in kinds:
            name = f"{function}-v{version}-{kind}"
            common = {"AlarmName": name, "AlarmActions": [self.topic], "OKActions": [self.topic],
                      "EvaluationPeriods": 1, "TreatMissingData": "notBreaching",
                      "AlarmDescription": f"Hallmark {kind} alarm of {function} version {version}"}
            if kind == "error_anomaly":
                self.cw.put_metric_alarm(**common, ComparisonOperator="GreaterThanUpperThreshold",
                                         ThresholdMetricId="band", Metrics=[
                    {"Id": "errors", "ReturnData": True, "MetricStat": {
                        "Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Dimensions": dims},
                        "Period": 60, "Stat": "Sum"}},
                    {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(errors, 2)", "ReturnData": True}])
            else:
                self.cw.put_metric_alarm(**common, Namespace="AWS/Lambda", Dimensions=dims, Period=60,
                                         ComparisonOperator="GreaterThanOrEqualToThreshold", **_ALARMS[kind])
            names.append(name)
        return names

    def alarm_states(self, names: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(names), 100):
            resp = self.cw.describe_alarms(AlarmNames=names[i:i + 100])
            for a in [*resp.get("MetricAlarms", []), *resp.get("CompositeAlarms", [])]:
                out[a["AlarmName"]] = a["StateValue"]
        return out

    def alarms_breached(self, names: list[str], since: datetime) -> list[str]:
        """``DescribeAlarmHistory`` (``StateUpdate`` items since ``since``) per alarm: breached when
        a state change since then entered or left ``ALARM``; any error reading it fails closed."""
        breached = []
        for name in names:
            kwargs: dict[str, Any] = {"AlarmName": name, "HistoryItemType": "StateUpdate", "StartDate": since,
                                      "EndDate": datetime.now(UTC), "MaxRecords": 100}
            try:
                while True:
                    resp = self.cw.describe_alarm_history(**kwargs)
                    if any(_touches_alarm(item) for item in resp.get("AlarmHistoryItems", [])):
                        breached.append(name)
                        break
                    if not resp.get("NextToken"):
                        break
                    kwargs["NextToken"] = resp["NextToken"]
            except (ClientError, BotoCoreError, NotImplementedError, KeyError, TypeError, ValueError) as exc:
                raise AlarmHistoryUnavailable(f"{name}: {type(exc).__name__}: {exc}"[:300]) from exc
        return breached

    def notify(self, subject: str, detail: dict[str, Any]) -> None:
        self.sns.publish(TopicArn=self.topic, Subject=subject[:100], Message=json.dumps(detail, sort_keys=True))
        self.cw.put_metric_data(Namespace="Hallmark", MetricData=[
            {"MetricName": "DeploymentDrifted", "Value": 1.0, "Unit": "Count",
             "Dimensions": [{"Name": "FunctionName", "Value": str(detail.get("functionName"))}]}])


def _touches_alarm(item: dict[str, Any]) -> bool:
    """A ``StateUpdate`` history item whose old or new state is ``ALARM`` (``HistoryData`` JSON)."""
    data = json.loads(item["HistoryData"])
    return "ALARM" in (data["oldState"]["stateValue"], data["newState"]["stateValue"])
