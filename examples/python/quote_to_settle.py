"""Quote → Authorize(quote_id) → Settle(usage), and the price lock, against a running creditgate.

    pip install -r examples/python/requirements.txt
    python examples/python/quote_to_settle.py --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key

Prints the reference quotes of the default catalog, runs a chat turn priced from its quote and
settled from metered usage, then publishes a dearer catalog version and shows that a run
authorized before it is still settled at the old price.
"""

import argparse
import pathlib
import uuid

import grpc

import stubs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--key-file", required=True)
    args = parser.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    stubs.generate()
    from creditgate.v1 import account_pb2, account_pb2_grpc, catalog_pb2, catalog_pb2_grpc, credit_pb2, credit_pb2_grpc, types_pb2  # noqa: E402

    metadata = (("authorization", f"Bearer {key}"),)
    channel = grpc.insecure_channel(args.address)
    accounts = account_pb2_grpc.AccountServiceStub(channel)
    credit = credit_pb2_grpc.CreditServiceStub(channel)
    catalogs = catalog_pb2_grpc.CatalogServiceStub(channel)

    def quote(model, **usage):
        return credit.Quote(credit_pb2.QuoteRequest(model=model, usage=types_pb2.Usage(**usage)), metadata=metadata)

    print("reference quotes (default catalog)")
    for model, usage in [
        ("openai/o3-pro", dict(input_tokens=10_000, output_tokens=10_000)),
        ("google/gemini-2.5-flash-lite-preview-09-2025", dict(cached_read_tokens=12_345)),
        ("bytedance/seed-1.8", dict(input_tokens=1_000, output_tokens=2_000, cached_read_tokens=500_000)),
    ]:
        response = quote(model, **usage)
        print(f"  {model:46} {usage} -> {response.total} (catalog v{response.catalog_version})")
        for item in response.line_items:
            print(f"      {item.kind:20} {item.quantity:>8} x {item.rate:>8} per {item.unit} = {item.amount}")

    account_id = accounts.CreateAccount(account_pb2.CreateAccountRequest(
        idempotency_key=str(uuid.uuid4()), external_id=f"org-{uuid.uuid4()}", kind=types_pb2.ACCOUNT_KIND_ORGANIZATION),
        metadata=metadata).account.account_id
    accounts.Grant(account_pb2.GrantRequest(idempotency_key=str(uuid.uuid4()), account_id=account_id,
                                            source=types_pb2.GRANT_SOURCE_PURCHASE, amount="10"), metadata=metadata)

    print("quote -> authorize(quote_id) -> settle(usage)")
    estimate = credit.Quote(credit_pb2.QuoteRequest(
        model="xai/grok-3-fast", account_id=account_id,
        usage=types_pb2.Usage(input_tokens=20_000, output_tokens=4_000)), metadata=metadata)
    print(f"  quote {estimate.quote_id[-8:]}: total {estimate.total}, allowed {estimate.allowed}, affordable {estimate.affordable}")
    hold = credit.Authorize(credit_pb2.AuthorizeRequest(
        idempotency_key=str(uuid.uuid4()), account_id=account_id, quote_id=estimate.quote_id,
        run=types_pb2.RunMetadata(task_type=types_pb2.TASK_TYPE_CHAT)), metadata=metadata).hold
    print(f"  hold {hold.amount} at catalog v{hold.catalog_version}, model {hold.run.model}")

    print("publish a catalog version where grok-3-fast costs 10x, then settle the old hold")
    current = catalogs.GetCatalog(catalog_pb2.GetCatalogRequest(), metadata=metadata).catalog
    for model in current.models:
        if model.model_id == "xai/grok-3-fast":
            model.token_rates.input_per_10k = "1.25"
            model.token_rates.output_per_10k = "6.25"
    current.description = "grok-3-fast x10"
    published = catalogs.PublishCatalog(catalog_pb2.PublishCatalogRequest(
        idempotency_key=str(uuid.uuid4()), catalog=current), metadata=metadata).catalog
    print(f"  published v{published.version}")
    # Naming the hold's account is optional; the hold must then be that account's.
    settlement = credit.Settle(credit_pb2.SettleRequest(
        idempotency_key=str(uuid.uuid4()), hold_id=hold.hold_id, account_id=account_id,
        usage=types_pb2.Usage(input_tokens=25_000, output_tokens=3_000)), metadata=metadata).settlement
    print(f"  settled at v{settlement.catalog_version}: total {settlement.total} (from_hold {settlement.from_hold}, "
          f"from_balance {settlement.from_balance}, released {settlement.released})")
    for item in settlement.line_items:
        print(f"      {item.kind:20} {item.quantity:>8} x {item.rate:>8} per {item.unit} = {item.amount}")
    fresh = quote("xai/grok-3-fast", input_tokens=25_000, output_tokens=3_000)
    print(f"  the same usage quoted now: {fresh.total} at v{fresh.catalog_version}")


if __name__ == "__main__":
    main()
