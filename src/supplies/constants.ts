/**
 * The supply enumerations, free of any import: the console's browser bundle reaches them through the live-channel
 * contract (src/contracts/console.ts → src/supplies/schemas.ts), so nothing here may pull in Node or the database.
 */

export const LEVELS = ['community', 'street', 'district'] as const;
export type Level = (typeof LEVELS)[number];

export const ITEM_CATEGORIES = [
  'flood',
  'fire',
  'medical',
  'lighting',
  'power',
  'communication',
  'water_food',
  'shelter',
  'rescue',
  'other',
] as const;
export type ItemCategory = (typeof ITEM_CATEGORIES)[number];

export const MOVEMENT_KINDS = [
  'receive',
  'issue',
  'return',
  'transfer_out',
  'transfer_in',
  'dispose',
  'inspect',
  'adjust',
] as const;
export type MovementKind = (typeof MOVEMENT_KINDS)[number];

export const CONDITIONS = ['good', 'damaged', 'faulty'] as const;
export type Condition = (typeof CONDITIONS)[number];

export const TRANSFER_STATUSES = ['requested', 'approved', 'declined', 'cancelled', 'in_transit', 'received'] as const;
export type TransferStatus = (typeof TRANSFER_STATUSES)[number];
