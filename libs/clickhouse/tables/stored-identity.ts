// How `events` and `users` rows name the user they belong to: user_id, in clear or as a
// pseudonym (identity_anonymized). Reads of one subject's rows match both together.

/** A lookup table's row naming one id a user is stored under; `anonymized` '1' for a pseudonym, '0' for the clear id. */
export interface StoredIdentityRow {
  [column: string]: string;
  tenant_id: string;
  user_id: string;
  anonymized: '0' | '1';
}

export const STORED_IDENTITY_COLUMNS = ['tenant_id', 'user_id', 'anonymized'] as const;

/**
 * The condition on an `events` or `users` row stored under one of a lookup table's
 * StoredIdentityRows.
 * NOTE: a clear id matches only rows stored in clear, a pseudonym only pseudonymized rows: an id
 * that equals another user's pseudonym reaches none of that user's rows.
 */
export function storedUnder(lookupTable: string): string {
  return `(tenant_id, user_id, toString(identity_anonymized)) GLOBAL IN (SELECT tenant_id, user_id, anonymized FROM ${lookupTable})`;
}
