"""moto's SQS in linear time (issue 25, item 5: a producer burst must not be paced).

moto 5.2.1 does work proportional to the depth of a queue on every message: ``send_message`` reads
``queue.attributes`` (which counts every message three times, to read ContentBasedDeduplication),
``receive_message`` lists every visible message before taking ten, and ``delete_message`` scans the
queue twice and rebuilds its list (unlocked: a message sent meanwhile could be lost). With 20,000
messages queued a burst then runs at tens of events per second. The same operations, with the same
results, without the per-message scans:

- while a message is sent, ``Queue.attributes`` leaves out the three message counts (nothing on
  that path reads them; ``GetQueueAttributes`` still counts);
- a short-poll receive walks the queue in order and stops once it has ``count`` messages (moto's
  own logic otherwise: pending groups of FIFO queues, the redrive to the dead-letter queue,
  retention); long polls are left to moto;
- a delete finds the message from the front (the oldest, where received messages are) and removes
  it in place, under the queue's lock;
- the retention check reads the retention period instead of computing every attribute.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from copy import deepcopy
from typing import Any

Patch = Callable[[Any, str, Any], None]
_SENDING = threading.local()  # .on while this thread is inside send_message
_COUNTS = {"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
           "ApproximateNumberOfMessagesNotVisible"}


def install_sqs_patches(patch: Patch) -> None:
    from moto.sqs.models import Queue, SQSBackend

    original_attributes = Queue.attributes
    original_send = SQSBackend.send_message
    original_receive = SQSBackend.receive_message

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(_SENDING, "on", False):
            return original_attributes.fget(self)  # type: ignore[attr-defined,no-any-return]
        return _attributes_without_counts(self)

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(_SENDING, "on", False)
        _SENDING.on = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _SENDING.on = outer

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        visibility_timeout: int, message_attribute_names: list[str] | None = None) -> list[Any]:
        if wait_seconds_timeout:
            return original_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                    message_attribute_names)
        return _short_poll(self, queue_name, count, visibility_timeout, message_attribute_names or [])

    patch(Queue, "attributes", property(attributes))
    patch(Queue, "delete_message", _delete_message)
    patch(SQSBackend, "send_message", send_message)
    patch(SQSBackend, "receive_message", receive_message)
    patch(SQSBackend, "is_message_valid_based_on_retention_period", _retention_ok)


def _attributes_without_counts(queue: Any) -> dict[str, Any]:
    """``Queue.attributes`` as moto computes it, less the message counts."""
    from moto.core.utils import camelcase_to_underscores

    names = [a for a in queue.BASE_ATTRIBUTES if a not in _COUNTS]
    if queue.fifo_queue:
        names += queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:
        names += queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {a: getattr(queue, camelcase_to_underscores(a)) for a in names}
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        import json

        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}


def _short_poll(backend: Any, queue_name: str, count: int, visibility_timeout: int,
                attribute_names: list[str]) -> list[Any]:
    """moto's ``receive_message`` with ``WaitTimeSeconds=0``, stopping at ``count`` messages."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import _filter_message_attributes

    queue = backend.get_queue(queue_name)
    result: list[Any] = []
    pending_groups = deepcopy(queue.pending_message_groups)
    to_dlq: list[Any] = []
    now = unix_time_millis()
    for message in list(queue._messages):
        if now <= message.visible_at or now < message.delayed_until:  # not visible, or delayed
            continue
        if message in queue.pending_messages:  # pending but visible again: its consumer timed out
            queue.pending_messages.remove(message)
            pending_groups = deepcopy(queue.pending_message_groups)
        if message.group_id and queue.fifo_queue and message.group_id in pending_groups:
            continue
        if (queue.dead_letter_queue is not None and queue.redrive_policy
                and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]):
            to_dlq.append(message)
            continue
        queue.pending_messages.add(message)
        message.mark_received(visibility_timeout=visibility_timeout)
        copy = deepcopy(message)  # not the message itself: the attribute filter changes it
        _filter_message_attributes(copy, attribute_names)
        if not backend.is_message_valid_based_on_retention_period(queue_name, message):
            break
        result.append(copy)
        if len(result) >= count:
            break
    for message in to_dlq:
        with queue._messages_lock:
            queue._messages.remove(message)
        queue.dead_letter_queue.add_message(message)
    return result


def _delete_message(self: Any, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``, from the front and in place."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in self.deleted_messages:
        return  # already deleted: deleting again is fine
    with self._messages_lock:
        for i, message in enumerate(self._messages):
            if message.had_receipt_handle(receipt_handle):
                del self._messages[i]
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                return
    raise ReceiptHandleIsInvalid()


def _retention_ok(self: Any, queue_name: str, message: Any) -> bool:
    """moto's ``SQSBackend.is_message_valid_based_on_retention_period`` without computing the
    queue's message counts for every message received."""
    from moto.core.utils import unix_time

    retention = int(self.get_queue(queue_name).message_retention_period)
    return bool(retention + message.sent_timestamp / 1000 > unix_time())
