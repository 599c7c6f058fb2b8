/** The limits of one transaction (`TransactWriteItems`) as projections use it. */

/** Rows per transaction: 100 items, one of them the checkpoint. */
export const MAX_TRANSACTION_ROWS = 99
/** DynamoDB's 4 MB per transaction, less room for the checkpoint and keys. */
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024
