"""The local cloud runs handlers in threads; moto's DynamoDB is not thread-safe on its own.

DynamoDB applies each request atomically, and the adapters (chain heads, ceremony records, ledger
balances) rely on that. These tests hammer one item from several threads, as concurrent handlers
do, and fail without the local cloud's per-request DynamoDB lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from hallmark_tools.localcloud.cloud import REGION, LocalCloud

THREADS = 6


@pytest.fixture(scope="module")
def table(shared_cloud: LocalCloud) -> Iterator[str]:
    client = boto3.client("dynamodb", region_name=REGION)
    name = "concurrency-probe"
    client.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    yield name
    client.delete_table(TableName=name)


def _in_threads(work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # collected, asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_updates_of_one_item_all_apply(table: str) -> None:
    rounds = 150

    def work(i: int) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        for j in range(rounds):
            # adds or removes an attribute each time, so the item changes size under other requests
            change = f"SET a{i} = :one" if j % 2 else f"REMOVE a{i}"
            client.update_item(TableName=table, Key={"pk": {"S": "hot"}}, UpdateExpression=f"{change} ADD n :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})

    assert _in_threads(work) == []
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=table, Key={"pk": {"S": "hot"}}, ConsistentRead=True)["Item"]
    assert int(item["n"]["N"]) == THREADS * rounds


def test_concurrent_conditional_increments_never_lose_an_update(table: str) -> None:
    """Optimistic concurrency, as the chain head uses it: read, then write if unchanged."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.put_item(TableName=table, Item={"pk": {"S": "head"}, "seq": {"N": "0"}})
    per_thread = 40

    def work(i: int) -> None:
        local = boto3.client("dynamodb", region_name=REGION)
        done = 0
        while done < per_thread:
            seq = int(local.get_item(TableName=table, Key={"pk": {"S": "head"}},
                                     ConsistentRead=True)["Item"]["seq"]["N"])
            try:
                local.put_item(TableName=table, Item={"pk": {"S": "head"}, "seq": {"N": str(seq + 1)}},
                               ConditionExpression="seq = :seen", ExpressionAttributeValues={":seen": {"N": str(seq)}})
                done += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise

    assert _in_threads(work) == []
    item = client.get_item(TableName=table, Key={"pk": {"S": "head"}}, ConsistentRead=True)["Item"]
    assert int(item["seq"]["N"]) == THREADS * per_thread
