/**
 * The aggregate every command benchmark runs (`aggregate.bench.ts` and the CPU tools in
 * `cpu/`): deposits on an account, with the ~200-byte event of `event-store.bench.ts`, and
 * the hand-written command handler it is compared with.
 */
import { type AttributeValue, type DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { Aggregate, EventStore } from "@dynamo-es/core"
import { Context, Effect, Schema } from "effect"
import { monotonicFactory } from "ulid"
import { queryStream } from "./harness.js"

export const PAYLOAD_BYTES = 200
export const EVENT_TYPE = "MoneyDeposited"

export const MoneyDeposited = Schema.TaggedStruct(EVENT_TYPE, {
  accountId: Schema.String,
  amount: Schema.Finite,
  currency: Schema.String,
  note: Schema.String
})
export type MoneyDeposited = typeof MoneyDeposited.Type

export interface State {
  readonly balance: number
  readonly deposits: number
}
export interface Deposit {
  readonly amount: number
}

export const initialState: State = { balance: 0, deposits: 0 }
export const evolve = (s: State, e: MoneyDeposited): State => ({ balance: s.balance + e.amount, deposits: s.deposits + 1 })

/** The note that makes the stored JSON (with the `_tag` the Schema stores) about `PAYLOAD_BYTES` long. */
const noteLength = PAYLOAD_BYTES -
  JSON.stringify({ _tag: EVENT_TYPE, accountId: "acc-0042", amount: 100_000, currency: "EUR", note: "" }).length
export const NOTE = ("deposit reference " + "x".repeat(PAYLOAD_BYTES)).slice(0, noteLength)

export const decide = (command: Deposit, state: State): ReadonlyArray<MoneyDeposited> =>
  command.amount <= 0 || state.balance + command.amount > 1e15
    ? []
    : [{ _tag: EVENT_TYPE, accountId: "acc-0042", amount: command.amount, currency: "EUR", note: NOTE }]
export const amountOf = (n: number) => 1 + (n % 99_999)
export const metadataFor = (n: number): EventStore.EventMetadata => ({ correlationId: `corr-${String(n % 1_000_000).padStart(6, "0")}` })

export const Account = Aggregate.make({ events: MoneyDeposited, initialState, evolve, decide })

const rawUlid = monotonicFactory()

/** The item the library writes for an event: attributes `s v i y d m t`, same JSON. */
export const rawItem = (
  streamId: string,
  version: number,
  event: MoneyDeposited,
  metadata: EventStore.EventMetadata,
  now: number
): Record<string, AttributeValue> => ({
  s: { S: streamId },
  v: { N: String(version) },
  i: { S: rawUlid(now) },
  y: { S: event._tag },
  d: { S: JSON.stringify(event) },
  t: { N: String(now) },
  m: { S: JSON.stringify(metadata) }
})

/**
 * The hand-written command handler: load (every page, strongly consistent; JSON.parse and
 * fold), decide, one conditional PutItem of the next version.
 */
export const rawHandle = async (sdk: DynamoDBClient, table: string, streamId: string, command: Deposit, metadata: EventStore.EventMetadata) => {
  let state = initialState
  let version = 0
  await queryStream(sdk, table, streamId, (item) => {
    state = evolve(state, JSON.parse(item.d!.S!) as MoneyDeposited)
    version = Number(item.v!.N)
  })
  const events = decide(command, state)
  if (events.length === 0) return { state, version }
  await sdk.send(
    new PutItemCommand({
      TableName: table,
      Item: rawItem(streamId, version + 1, events[0]!, metadata, Date.now()),
      ConditionExpression: "attribute_not_exists(v)",
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      ReturnConsumedCapacity: "TOTAL"
    })
  )
  return { state: evolve(state, events[0]!), version: version + 1 }
}

/**
 * The CPU tools' "ours" side: `n` commands on one stream through `Aggregate.handle` over
 * `store`, in one Effect run; `next()` numbers the commands (amounts, metadata), shared
 * with the raw side so both do the same work.
 */
export const oursSide = (store: EventStore.EventStoreShape, next: () => number) => {
  const context = Context.make(EventStore.EventStore, store)
  return (streamId: string, n: number): Promise<void> =>
    Effect.runPromise(
      Effect.gen(function*() {
        for (let k = 0; k < n; k++) {
          const i = next()
          yield* Account.handle(streamId, { amount: amountOf(i) }, { metadata: metadataFor(i) })
        }
      }).pipe(Effect.provide(context))
    )
}
