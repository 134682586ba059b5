/** Shapes of the HTTP API and the WS protocol, taken from the server's schemas (types only: nothing is bundled). */
import type { Static } from 'typebox';
import type { ConsoleNotification, DrillLiveEvent, ServerMessage } from '../../contracts/console.ts';
import type { DrillReport } from '../../drills/report.ts';
import type { DrillSummarySchema, DrillViewSchema, ScenarioViewSchema } from '../../drills/schemas.ts';
import type { AccessLogEntrySchema } from '../../http/routes/access-log.ts';
import type {
  DeviceCommandSchema,
  DeviceDetail as DeviceDetailSchema,
  RejectSchema,
} from '../../http/routes/devices.ts';
import type { AlertStatsSchema, OverviewSchema } from '../../http/routes/stats.ts';
import type {
  AlertSchema,
  Device as DeviceSchema,
  Household as HouseholdSchema,
  Resident as ResidentSchema,
  ReadingPoint as ReadingPointSchema,
  Staff as StaffSchema,
  TimelineEntrySchema,
} from '../../http/schemas.ts';

export type { ConsoleNotification, DrillLiveEvent, DrillReport, ServerMessage };
export type Alert = Static<typeof AlertSchema>;
export type TimelineEntry = Static<typeof TimelineEntrySchema>;
export type Household = Static<typeof HouseholdSchema>;
/** `GET /api/v1/households/:id`: full names and contacts only for the roles that need them (then access-logged). */
export type HouseholdDetail = Omit<Household, 'residents'> & {
  residents: (Static<typeof ResidentSchema> & { fullName?: string })[];
  personalDetails?: 'shown' | 'masked';
};
export type Device = Static<typeof DeviceSchema>;
export type DeviceDetail = Static<typeof DeviceDetailSchema>;
export type DeviceCommand = Static<typeof DeviceCommandSchema>;
export type Reject = Static<typeof RejectSchema>;
export type AccessLogEntry = Static<typeof AccessLogEntrySchema>;
export type Overview = Static<typeof OverviewSchema>;
export type AlertStats = Static<typeof AlertStatsSchema>;
export type ReadingPoint = Static<typeof ReadingPointSchema>;
export type Staff = Static<typeof StaffSchema>;
/** Drills (issue 6): a list row and the `drill` live message's `drill`; the drill page; a scenario. */
export type DrillSummary = Static<typeof DrillSummarySchema>;
export type DrillView = Static<typeof DrillViewSchema>;
export type ScenarioView = Static<typeof ScenarioViewSchema>;

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

/** `GET /api/v1/auth/me`: name, coverage and device are being added (optional until they are). */
export interface Me {
  id: string;
  username: string;
  roles: string[];
  name?: string;
  gridIds?: string[];
  all?: boolean;
  device?: 'desk' | 'phone';
}

/** `GET /api/v1/notifications` item. */
export interface NotificationRecord extends ConsoleNotification {
  body?: string;
  providerId?: string;
  createdAt?: string;
  errorCode?: string;
  statusHistory?: { status: string; at: string; detail?: string }[];
  batchId?: string;
}

export interface Visit {
  id: string;
  householdId: string;
  staffId: string;
  ts: string;
  outcome: string;
  notes?: string;
  alertId?: string;
}

export interface Away {
  id: string;
  householdId: string;
  from: string;
  until: string;
  reason: string;
  createdBy: string;
  ended?: string;
}

export interface Overdue {
  householdId: string;
  colour: string;
  gridId: string;
  lastVisit?: string;
  dueAt: string;
  overdueDays: number;
}

export interface HierarchyNode {
  id: string;
  name: string;
  parentId?: string;
  level: string;
}

export interface DeviceModel {
  id: string;
  vendor?: string;
  family?: string;
  kind?: string;
  description?: string;
  commands?: string[];
}

export interface Absence {
  id: string;
  staffId: string;
  from: string;
  to: string;
  substituteId: string;
  role?: string;
  gridId?: string;
  note?: string;
  createdBy?: string;
  createdAt: string;
}

/** Emergency supplies (issue 7): shapes of /api/v1/supplies (src/supplies/schemas.ts, types only). */
export type {
  DepotAlert,
  DepotView,
  LotView,
  MovementView,
  OpResult,
  StockLevel,
  TransferView,
} from '../../supplies/schemas.ts';
import type { DepotAlert, DepotView, StockLevel, TransferView } from '../../supplies/schemas.ts';
export type { StockLiveEvent } from '../../contracts/console.ts';

export interface BiText {
  zh: string;
  en: string;
}
export interface CatalogueItem {
  id: string;
  name: BiText;
  category: string;
  unit: BiText;
  shelfLifeDays?: number;
  inspectionEveryDays?: number;
}
export interface Catalogue {
  items: CatalogueItem[];
  expiring: { infoDays: number; minorDays: number };
}
/** `GET /supplies/depots/:id` */
export type DepotDetail = DepotView & { levels: StockLevel[]; alerts: DepotAlert[]; transfers: TransferView[] };
/** `GET /supplies/depots/:id/sources` */
export interface SupplySource {
  rank: number;
  kind: 'depot' | 'agreement';
  relation: 'own' | 'same_street' | 'street' | 'district' | 'other';
  depotId: string;
  depotName: BiText;
  level: string;
  communityName?: BiText;
  usable?: number;
  minimum?: number;
  spare?: number;
  nextExpiry?: string;
  keeper?: { id: string; username: string; name: string };
  agreementId?: string;
  supplier?: string;
  contact?: string;
  quantity?: number;
  withinHours?: number;
}
export interface Sources {
  depotId: string;
  itemId: string;
  level: StockLevel;
  sources: SupplySource[];
}
/** `GET /supplies/shortfalls` */
export interface Shortfall {
  communityId: string;
  name: BiText;
  inRegistry: boolean;
  population: number;
  depotIds: string[];
  lines: { itemId: string; minimum: number; available: number; incoming: number; shortfall: number }[];
  short: number;
}
export interface CalendarMonth {
  month: string;
  lots: { lotId: string; depotId: string; itemId: string; quantity: number; expiresOn: string }[];
  totals: { itemId: string; quantity: number }[];
}
export interface ExpiryCalendar {
  from: string;
  months: CalendarMonth[];
  expired: CalendarMonth;
}
