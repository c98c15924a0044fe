"""Events against a running creditgate: one thread watches an account's events (WatchEvents)
while another drives the account below its threshold, toward expiry and into debt; each event
is printed once.

    pip install -r examples/python/requirements.txt
    python examples/python/events.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key

A new account (threshold 50 credits, policy DEBT) gets a purchase of 100 credits. Then:
- a run of 60 settles: the balance falls below 50 (BALANCE_LOW, once, not again for the next
  run below it);
- a promo of 5 credits that expires in a few seconds: it is within the expiry warning horizon
  (72 h by default), so CREDITS_EXPIRING comes with it, then CREDITS_EXPIRED once its time has
  passed;
- a hold with a one-second TTL is left alone: HOLD_EXPIRED;
- a run settles for more than the account has: DEBT_INCURRED;
- every grant: GRANT_ADDED.
The watcher dedupes by event_id (delivery is at least once) and keeps the last cursor; after all
types arrived, a second stream resumes from the first event's cursor and must replay the same
events in the same order. The script exits with an error if an event is missing, repeated or
out of order.
"""

import argparse
import datetime
import pathlib
import queue
import sys
import threading
import time
import uuid

import grpc
from google.protobuf import timestamp_pb2

import stubs

WAIT_SECONDS = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--key-file", required=True, help="file holding an API key with the billing, worker and reader scopes")
    args = parser.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    stubs.generate()
    from creditgate.v1 import account_pb2, account_pb2_grpc, credit_pb2, credit_pb2_grpc, types_pb2  # noqa: E402

    channel = grpc.insecure_channel(args.address)
    metadata = (("authorization", f"Bearer {key}"),)
    accounts = account_pb2_grpc.AccountServiceStub(channel)
    credit = credit_pb2_grpc.CreditServiceStub(channel)
    t = types_pb2

    def idem() -> str:
        return str(uuid.uuid4())

    account_id = accounts.CreateAccount(account_pb2.CreateAccountRequest(
        idempotency_key=idem(), external_id=f"events-{uuid.uuid4()}", kind=t.ACCOUNT_KIND_ORGANIZATION,
        settle_policy=t.SETTLE_POLICY_DEBT, low_balance_threshold="50"), metadata=metadata).account.account_id

    received: "queue.Queue[object]" = queue.Queue()

    def watch(cursor: str) -> grpc.Future:
        stream = accounts.WatchEvents(account_pb2.WatchEventsRequest(account_id=account_id, cursor=cursor),
                                      metadata=metadata)

        def pump() -> None:
            try:
                for message in stream:
                    received.put(message.event)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    received.put(error)

        threading.Thread(target=pump, daemon=True).start()
        return stream

    live = watch("")
    # Without a cursor the stream starts from the moment the server answers the call.
    live.initial_metadata()
    events: list = []
    seen: set = set()

    def take(wanted: str) -> object:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                item = received.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item, grpc.RpcError):
                sys.exit(f"the stream failed: {item.code()} {item.details()}")
            if item.event_id in seen:
                continue  # at least once: a repeat is dropped by id
            seen.add(item.event_id)
            events.append(item)
            name = t.EventType.Name(item.type)
            print(f"{name:32} {dict(sorted(item.attributes.items()))}")
            if name == wanted:
                return item
        sys.exit(f"no {wanted} within {WAIT_SECONDS} s")

    def grant(amount: str, source: int, expires_in: float | None = None) -> None:
        request = account_pb2.GrantRequest(idempotency_key=idem(), account_id=account_id, amount=amount, source=source)
        if expires_in is not None:
            expires = timestamp_pb2.Timestamp()
            expires.FromDatetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in))
            request.expires_at.CopyFrom(expires)
        accounts.Grant(request, metadata=metadata)

    def run(amount: str, charged: str) -> None:
        hold = credit.Authorize(credit_pb2.AuthorizeRequest(idempotency_key=idem(), account_id=account_id,
                                                            amount=amount), metadata=metadata).hold
        credit.Settle(credit_pb2.SettleRequest(idempotency_key=idem(), hold_id=hold.hold_id, amount=charged),
                      metadata=metadata)

    grant("100", t.GRANT_SOURCE_PURCHASE)
    take("EVENT_TYPE_GRANT_ADDED")
    run("60", "60")
    take("EVENT_TYPE_BALANCE_LOW")
    run("10", "10")  # still below: no second BALANCE_LOW
    grant("5", t.GRANT_SOURCE_PROMO, expires_in=4)
    take("EVENT_TYPE_GRANT_ADDED")
    take("EVENT_TYPE_CREDITS_EXPIRING")  # it expires within the horizon: warned at once
    credit.Authorize(credit_pb2.AuthorizeRequest(idempotency_key=idem(), account_id=account_id, amount="1",
                                                 ttl_seconds=1), metadata=metadata)
    take("EVENT_TYPE_HOLD_EXPIRED")
    take("EVENT_TYPE_CREDITS_EXPIRED")
    run("10", "200")  # far more than the account has: debt
    take("EVENT_TYPE_DEBT_INCURRED")
    live.cancel()

    names = [t.EventType.Name(event.type) for event in events]
    if names.count("EVENT_TYPE_BALANCE_LOW") != 1:
        sys.exit(f"BALANCE_LOW fired {names.count('EVENT_TYPE_BALANCE_LOW')} times: {names}")
    positions = [event.cursor for event in events]
    if len(set(positions)) != len(positions):
        sys.exit("two events share a cursor")

    # Resume after the first event: the same events again, in the same order.
    replay = watch(events[0].cursor)
    replayed = []
    deadline = time.monotonic() + WAIT_SECONDS
    while len(replayed) < len(events) - 1 and time.monotonic() < deadline:
        try:
            item = received.get(timeout=0.5)
        except queue.Empty:
            continue
        if isinstance(item, grpc.RpcError):
            sys.exit(f"the replay failed: {item.code()} {item.details()}")
        replayed.append(item.event_id)
    replay.cancel()
    if replayed != [event.event_id for event in events[1:]]:
        sys.exit(f"the replay differs: {replayed} != {[event.event_id for event in events[1:]]}")
    print(f"{len(events)} events, each once; the replay after the first cursor matched")


if __name__ == "__main__":
    main()
