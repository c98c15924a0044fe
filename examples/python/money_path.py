"""Drives creditgate's money path end to end, the way a billing system and its workers would.

    pip install -r examples/python/requirements.txt
    python examples/python/money_path.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key
    python examples/python/money_path.py --race 500 --address A --address B --key-file ...

Creates an account, grants free / subscription / top-up / expiring purchase credits, authorizes,
settles below and above holds, releases, refunds and prints the balance by bucket. With --race N
it then fires N concurrent 1-credit Authorize calls at an account holding N/5 credits, spread
over every --address (e.g. two server processes on one database), and checks that exactly N/5
succeed.
"""

import argparse
import concurrent.futures
import datetime
import pathlib
import time
import uuid

import grpc

import stubs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", help="server address (repeat for several replicas)")
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--race", type=int, default=0, help="concurrent Authorize calls to race (0 = skip)")
    args = parser.parse_args()
    addresses = args.address or ["127.0.0.1:50051"]
    key = pathlib.Path(args.key_file).read_text().strip()
    stubs.generate()
    from creditgate.v1 import account_pb2, account_pb2_grpc, credit_pb2, credit_pb2_grpc, types_pb2  # noqa: E402

    metadata = (("authorization", f"Bearer {key}"),)
    channels = [grpc.insecure_channel(address) for address in addresses]
    accounts = account_pb2_grpc.AccountServiceStub(channels[0])
    credit = credit_pb2_grpc.CreditServiceStub(channels[0])

    def new_key() -> str:
        return str(uuid.uuid4())

    def create_account(policy=types_pb2.SETTLE_POLICY_DEBT) -> str:
        request = account_pb2.CreateAccountRequest(
            idempotency_key=new_key(), external_id=f"org-{uuid.uuid4()}", kind=types_pb2.ACCOUNT_KIND_ORGANIZATION,
            settle_policy=policy, entitlements=["pro"])  # the runs below name openai/o3-pro, a "pro" model
        return accounts.CreateAccount(request, metadata=metadata).account.account_id

    def grant(account_id: str, source, amount: str, expires_in_days=None) -> None:
        request = account_pb2.GrantRequest(idempotency_key=new_key(), account_id=account_id, source=source, amount=amount)
        if expires_in_days is not None:
            request.expires_at.FromDatetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=expires_in_days))
        response = accounts.Grant(request, metadata=metadata)
        print(f"  grant {types_pb2.GrantSource.Name(source):28} {amount:>6} -> available {response.available}")

    def authorize(account_id: str, amount: str, stub=credit):
        request = credit_pb2.AuthorizeRequest(
            idempotency_key=new_key(), account_id=account_id, amount=amount,
            run=types_pb2.RunMetadata(task_type=types_pb2.TASK_TYPE_CHAT, model="openai/o3-pro"))
        return stub.Authorize(request, metadata=metadata)

    def settle(hold_id: str, amount: str):
        request = credit_pb2.SettleRequest(idempotency_key=new_key(), hold_id=hold_id, amount=amount)
        return credit.Settle(request, metadata=metadata).settlement

    def show_balance(account_id: str) -> None:
        balance = accounts.GetBalance(account_pb2.GetBalanceRequest(account_id=account_id), metadata=metadata)
        print(f"  balance: available {balance.available}, held {balance.held}, debt {balance.debt}")
        for bucket in balance.buckets:
            print(f"    {types_pb2.GrantSource.Name(bucket.source):28} available {bucket.available:>8} "
                  f"held {bucket.held:>6} expiring soon {bucket.expiring_soon}")

    print("account and grants")
    account_id = create_account()
    grant(account_id, types_pb2.GRANT_SOURCE_FREE_DAILY, "5", expires_in_days=1)
    grant(account_id, types_pb2.GRANT_SOURCE_SUBSCRIPTION, "20", expires_in_days=30)
    grant(account_id, types_pb2.GRANT_SOURCE_TOPUP, "50")
    grant(account_id, types_pb2.GRANT_SOURCE_PURCHASE, "10", expires_in_days=3)
    show_balance(account_id)

    print("authorize 12, settle 9 (below the hold)")
    hold = authorize(account_id, "12").hold
    print("  allocations:", ", ".join(f"{a.amount} from {a.grant_id[-6:]}" for a in hold.allocations))
    s = settle(hold.hold_id, "9")
    print(f"  settlement: total {s.total}, from_hold {s.from_hold}, released {s.released}")

    print("authorize 10, settle 14.25 (above the hold)")
    hold = authorize(account_id, "10").hold
    above = settle(hold.hold_id, "14.25")
    print(f"  settlement: total {above.total}, from_hold {above.from_hold}, from_balance {above.from_balance}, debt {above.debt}")

    print("authorize 3, release")
    hold = authorize(account_id, "3").hold
    released = credit.Release(credit_pb2.ReleaseRequest(idempotency_key=new_key(), hold_id=hold.hold_id, reason="run failed"), metadata=metadata)
    print(f"  released {released.released}, hold {types_pb2.HoldStatus.Name(released.hold.status)}")

    print("refund 4 of the above-hold settlement, then the rest")
    for amount in ("4", ""):
        refund = credit.Refund(credit_pb2.RefundRequest(idempotency_key=new_key(), settlement_id=above.settlement_id, amount=amount, reason="support"), metadata=metadata).refund
        print(f"  refunded {refund.amount} to {', '.join(r.amount + ' -> ' + r.grant_id[-6:] for r in refund.returned_to)}")
    show_balance(account_id)

    print("debt: settle 100 above a 1-credit hold on what is left")
    hold = authorize(account_id, "1").hold
    in_debt = settle(hold.hold_id, "100")
    print(f"  settlement: from_hold {in_debt.from_hold}, from_balance {in_debt.from_balance}, debt {in_debt.debt}")
    try:
        authorize(account_id, "1")
    except grpc.RpcError as error:
        print(f"  authorize while in debt: {error.code().name}: {error.details()}")
    grant(account_id, types_pb2.GRANT_SOURCE_PURCHASE, "60")
    show_balance(account_id)

    if args.race:
        race(args.race, channels, create_account, grant, authorize, show_balance, credit_pb2_grpc, types_pb2)


def race(calls, channels, create_account, grant, authorize, show_balance, credit_pb2_grpc, types_pb2) -> None:
    funded = calls // 5
    print(f"race: {calls} concurrent Authorize of 1 credit on {funded} credits over {len(channels)} server(s)")
    account_id = create_account()
    grant(account_id, types_pb2.GRANT_SOURCE_TOPUP, str(funded))
    stubs_by_server = [credit_pb2_grpc.CreditServiceStub(channel) for channel in channels]

    def attempt(index: int) -> str:
        try:
            authorize(account_id, "1", stub=stubs_by_server[index % len(stubs_by_server)])
            return "OK"
        except grpc.RpcError as error:
            return error.code().name

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        outcomes = list(pool.map(attempt, range(calls)))
    elapsed = time.monotonic() - started
    counts = {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
    print(f"  outcomes: {counts} in {elapsed:.2f} s")
    show_balance(account_id)
    assert counts.get("OK") == funded, f"expected exactly {funded} holds"
    print("  no overspend")


if __name__ == "__main__":
    main()
