/**
 * The supply shapes the HTTP API and the console's live channel share (TypeBox: validation, types and OpenAPI from
 * one place). Instants are ISO-8601; days (received, expiry) are `YYYY-MM-DD` in the community's time zone.
 */
import { type Static, Type } from 'typebox';
import { CONDITIONS, ITEM_CATEGORIES, LEVELS, MOVEMENT_KINDS, TRANSFER_STATUSES } from './constants.ts';

export const TextSchema = Type.Object({ zh: Type.String(), en: Type.String() });

export const ItemViewSchema = Type.Object({
  id: Type.String(),
  name: TextSchema,
  category: Type.Enum([...ITEM_CATEGORIES]),
  unit: TextSchema,
  shelfLifeDays: Type.Optional(Type.Integer()),
  inspectionEveryDays: Type.Optional(Type.Integer()),
  note: Type.Optional(Type.String()),
});

export const QuotaViewSchema = Type.Object({
  itemId: Type.String(),
  absolute: Type.Optional(Type.Integer()),
  per1000: Type.Optional(Type.Number({ description: 'units per 1,000 residents served, rounded up' })),
});

export const CatalogueViewSchema = Type.Object({
  items: Type.Array(ItemViewSchema),
  quotas: Type.Object({
    community: Type.Array(QuotaViewSchema),
    street: Type.Array(QuotaViewSchema),
    district: Type.Array(QuotaViewSchema),
  }),
  /** days before expiry when an `info` (and then a `minor`) expiry alert opens */
  expiring: Type.Object({ infoDays: Type.Integer(), minorDays: Type.Integer() }),
});

export const AgreementViewSchema = Type.Object({
  id: Type.String(),
  supplier: Type.String(),
  contact: Type.Optional(Type.String()),
  validUntil: Type.Optional(Type.String()),
  items: Type.Array(Type.Object({ itemId: Type.String(), quantity: Type.Integer(), withinHours: Type.Number() })),
});

export const StockLevelSchema = Type.Object({
  depotId: Type.String(),
  itemId: Type.String(),
  /** every unit in the depot */
  total: Type.Integer(),
  /** good condition and not expired: what can be issued, and what counts against the minimum */
  usable: Type.Integer(),
  expired: Type.Integer(),
  /** damaged or faulty (a failed inspection) */
  unusable: Type.Integer(),
  minimum: Type.Integer(),
  minimumSource: Type.Enum(['override', 'quota', 'none']),
  shortfall: Type.Integer({ description: 'max(0, minimum − usable)' }),
  belowMinimum: Type.Boolean(),
  /** usable units expiring within 30 / 90 days (the alert thresholds) */
  expiringMinor: Type.Integer(),
  expiringInfo: Type.Integer(),
  /** lots whose inspection is overdue */
  inspectionOverdue: Type.Integer(),
  nextExpiry: Type.Optional(Type.String()),
  /** on their way here (transfers in transit) */
  incoming: Type.Integer(),
  lots: Type.Integer(),
});
export type StockLevel = Static<typeof StockLevelSchema>;

export const KeeperSchema = Type.Object({
  id: Type.String(),
  username: Type.String(),
  /** masked */
  name: Type.String(),
});

export const DepotViewSchema = Type.Object({
  id: Type.String(),
  name: TextSchema,
  level: Type.Enum([...LEVELS]),
  communityId: Type.Optional(Type.String()),
  communityName: Type.Optional(TextSchema),
  streetId: Type.Optional(Type.String()),
  districtId: Type.Optional(Type.String()),
  /** false: the community (or street, district) is only a label, not in this registry */
  inRegistry: Type.Boolean(),
  address: Type.String(),
  keeper: Type.Optional(KeeperSchema),
  population: Type.Integer(),
  populationSource: Type.Enum(['config', 'registry']),
  agreements: Type.Array(AgreementViewSchema),
  /** the caller may record movements here */
  canManage: Type.Boolean(),
  summary: Type.Object({
    items: Type.Integer({ description: 'items in stock' }),
    belowMinimum: Type.Integer(),
    expiringMinor: Type.Integer({ description: 'items with units expiring within 30 days' }),
    expired: Type.Integer({ description: 'items with expired units still in stock' }),
    inspectionOverdue: Type.Integer(),
    openAlerts: Type.Integer(),
    openTransfers: Type.Integer(),
  }),
});
export type DepotView = Static<typeof DepotViewSchema>;

export const DepotAlertSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  severity: Type.String(),
  status: Type.String(),
  itemId: Type.String(),
  lotId: Type.Optional(Type.String()),
  summary: Type.String(),
  firstSeen: Type.String(),
});
export type DepotAlert = Static<typeof DepotAlertSchema>;

export const LotViewSchema = Type.Object({
  id: Type.String(),
  depotId: Type.String(),
  itemId: Type.String(),
  quantity: Type.Integer(),
  receivedOn: Type.String(),
  expiresOn: Type.Optional(Type.String()),
  /** negative: expired that many days ago */
  daysToExpiry: Type.Optional(Type.Integer()),
  /** for the colour: expired, expiring within 30 days (minor), within 90 (info), ok, none (no expiry) */
  expiry: Type.Enum(['expired', 'minor', 'info', 'ok', 'none']),
  condition: Type.Enum([...CONDITIONS]),
  lastInspectedAt: Type.Optional(Type.String()),
  inspectionDueOn: Type.Optional(Type.String()),
  inspectionOverdue: Type.Boolean(),
  origin: Type.Optional(Type.String()),
  createdAt: Type.String(),
});
export type LotView = Static<typeof LotViewSchema>;

export const MovementViewSchema = Type.Object({
  id: Type.String(),
  opId: Type.String(),
  ts: Type.String(),
  depotId: Type.String(),
  itemId: Type.String(),
  lotId: Type.Optional(Type.String()),
  kind: Type.Enum([...MOVEMENT_KINDS]),
  quantity: Type.Integer({ description: 'signed: + into the depot, − out of it, 0 for an inspection' }),
  balanceAfter: Type.Optional(Type.Integer({ description: 'the lot’s quantity after the movement' })),
  by: Type.String({ description: 'staff id, or system:<what> / drill:<id>' }),
  reason: Type.Optional(Type.String()),
  ref: Type.Optional(Type.Object({ kind: Type.String(), id: Type.String() })),
  transferId: Type.Optional(Type.String()),
  corrects: Type.Optional(Type.String()),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type MovementView = Static<typeof MovementViewSchema>;

export const OpResultSchema = Type.Object({
  opId: Type.String(),
  movements: Type.Array(MovementViewSchema),
  /** the depot's stock of the items concerned, after the change */
  levels: Type.Array(StockLevelSchema),
});
export type OpResult = Static<typeof OpResultSchema>;

export const TransferLotSchema = Type.Object({
  lotId: Type.String(),
  quantity: Type.Integer(),
  receivedOn: Type.String(),
  expiresOn: Type.Optional(Type.String()),
  /** the lot created at the destination on receipt */
  receivedLotId: Type.Optional(Type.String()),
});
export type TransferLot = Static<typeof TransferLotSchema>;

export const TransferViewSchema = Type.Object({
  id: Type.String(),
  itemId: Type.String(),
  quantity: Type.Integer(),
  fromDepotId: Type.String(),
  toDepotId: Type.String(),
  status: Type.Enum([...TRANSFER_STATUSES]),
  reason: Type.Optional(Type.String()),
  requestedBy: Type.String(),
  requestedAt: Type.String(),
  decidedBy: Type.Optional(Type.String()),
  decidedAt: Type.Optional(Type.String()),
  decisionNote: Type.Optional(Type.String()),
  dispatchedBy: Type.Optional(Type.String()),
  dispatchedAt: Type.Optional(Type.String()),
  receivedBy: Type.Optional(Type.String()),
  receivedAt: Type.Optional(Type.String()),
  cancelledBy: Type.Optional(Type.String()),
  cancelledAt: Type.Optional(Type.String()),
  cancelNote: Type.Optional(Type.String()),
  lots: Type.Array(TransferLotSchema),
  updatedAt: Type.String(),
  /** what the caller may do next (the console's buttons) */
  actions: Type.Array(Type.Enum(['approve', 'decline', 'dispatch', 'receive', 'cancel'])),
});
export type TransferView = Static<typeof TransferViewSchema>;

export const STOCK_CHANGES = [...MOVEMENT_KINDS, 'import', 'transfer', 'minimums'] as const;
export type StockChange = (typeof STOCK_CHANGES)[number];

/** The body of a live `stock` message (src/contracts/console.ts adds `type` and `seq`). */
export const StockEventBodySchema = Type.Object({
  /**
   * a movement kind, `import` (a CSV stock count), `transfer` (a transfer changed state without moving stock) or
   * `minimums` (minimum levels changed)
   */
  change: Type.Enum([...STOCK_CHANGES]),
  /** the depots whose stock or transfers changed */
  depotIds: Type.Array(Type.String()),
  itemId: Type.Optional(Type.String()),
  opId: Type.Optional(Type.String()),
  /** the stock of the items concerned after the change, per depot */
  levels: Type.Array(StockLevelSchema),
  transfer: Type.Optional(Type.Omit(TransferViewSchema, ['actions'])),
  by: Type.String(),
  at: Type.String(),
});
export type StockEventBody = Static<typeof StockEventBodySchema>;
