#!/usr/bin/env node
// Quote -> Authorize(quote_id) -> Settle(usage) -> GetBalance against a running creditgate, from
// Node with @grpc/grpc-js and stubs loaded from proto/ at start (no generated code).
//
//   cd examples/node && npm ci
//   node quote_to_settle.js --address 127.0.0.1:50051 --key-file <data dir>/demo-api-key
//
// Creates an account, grants it 10 credits, quotes a chat turn, authorizes a hold from the
// quote, settles the metered usage, reads the balance, and prints the steps, then one JSON line
// (`result: {...}`) with every amount for scripts to read.

"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");
// Every call gets a deadline: a hung server must fail the example, not hang it.
const DEADLINE_MS = 10_000;

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      address: { type: "string", default: "127.0.0.1:50051" },
      key: { type: "string" },
      "key-file": { type: "string" },
      model: { type: "string", default: "xai/grok-3-fast" },
    },
  });
  // The key on the command line is for tests; a file keeps it out of `ps` and shell history.
  const key = values.key ?? (values["key-file"] && fs.readFileSync(values["key-file"], "utf8").trim());
  if (!key) {
    throw new Error("give --key-file <file holding an API key> (or --key)");
  }
  return { address: values.address, key, model: values.model };
}

function loadServices() {
  const definition = protoLoader.loadSync(
    ["creditgate/v1/credit.proto", "creditgate/v1/account.proto"],
    {
      includeDirs: [PROTO_ROOT],
      // Field names as in the proto (account_id), 64-bit integers as strings (never rounded
      // through a float), enums by their full names (ACCOUNT_KIND_ORGANIZATION).
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    },
  );
  return grpc.loadPackageDefinition(definition).creditgate.v1;
}

// A unary call as a promise, with the API key and a deadline.
function caller(key) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${key}`);
  return (client, method, request) =>
    new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + DEADLINE_MS);
      client[method](request, metadata, { deadline }, (error, response) => {
        if (error) {
          reject(new Error(`${method}: ${grpc.status[error.code]}: ${error.details}`));
        } else {
          resolve(response);
        }
      });
    });
}

async function main() {
  const { address, key, model } = parseCommandLine();
  const v1 = loadServices();
  const credentials = grpc.credentials.createInsecure();
  const credit = new v1.CreditService(address, credentials);
  const accounts = new v1.AccountService(address, credentials);
  const call = caller(key);
  // Every mutation carries a fresh idempotency key; a retry would reuse the same one.
  const idempotencyKey = () => crypto.randomUUID();

  const { account } = await call(accounts, "CreateAccount", {
    idempotency_key: idempotencyKey(),
    external_id: `org-${crypto.randomUUID()}`,
    kind: "ACCOUNT_KIND_ORGANIZATION",
  });
  const granted = "10";
  await call(accounts, "Grant", {
    idempotency_key: idempotencyKey(),
    account_id: account.account_id,
    source: "GRANT_SOURCE_PURCHASE",
    amount: granted,
  });
  console.log(`account ${account.account_id}: granted ${granted}`);

  const quote = await call(credit, "Quote", {
    model,
    account_id: account.account_id,
    usage: { input_tokens: "20000", output_tokens: "4000" },
  });
  console.log(`quote: ${quote.total} at catalog v${quote.catalog_version}, allowed ${quote.allowed}, affordable ${quote.affordable}`);
  for (const item of quote.line_items) {
    console.log(`    ${item.kind.padEnd(20)} ${item.quantity.padStart(8)} x ${item.rate.padStart(8)} per ${item.unit} = ${item.amount}`);
  }

  const { hold } = await call(credit, "Authorize", {
    idempotency_key: idempotencyKey(),
    account_id: account.account_id,
    quote_id: quote.quote_id,
    run: { task_type: "TASK_TYPE_CHAT" },
  });
  console.log(`hold ${hold.hold_id}: ${hold.amount} reserved, status ${hold.status}`);

  // The run used more tokens than estimated: Settle charges what was metered, the part above
  // the hold from the rest of the balance. Naming the hold's account is optional; the hold
  // must then be that account's.
  const { settlement } = await call(credit, "Settle", {
    idempotency_key: idempotencyKey(),
    hold_id: hold.hold_id,
    account_id: account.account_id,
    usage: { input_tokens: "25000", output_tokens: "5000" },
  });
  console.log(`settled: ${settlement.total} (from hold ${settlement.from_hold}, from balance ${settlement.from_balance}, released ${settlement.released})`);

  const balance = await call(accounts, "GetBalance", { account_id: account.account_id });
  console.log(`balance: available ${balance.available}, held ${balance.held}, debt ${balance.debt}`);

  const result = {
    account_id: account.account_id,
    granted,
    quote_total: quote.total,
    hold_amount: hold.amount,
    settled_total: settlement.total,
    available: balance.available,
    held: balance.held,
    debt: balance.debt,
  };
  console.log(`result: ${JSON.stringify(result)}`);
  credit.close();
  accounts.close();
}

main().catch((error) => {
  console.error(`quote_to_settle: ${error.message}`);
  process.exit(1);
});
