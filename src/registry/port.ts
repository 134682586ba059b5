/**
 * The registry's service interface: what the HTTP API, the broker, ingest and the CLI use.
 * Implemented by src/registry/registry.ts over the relational store (SQLite or PostgreSQL through Kysely).
 */
import type { DeviceStatus } from '../contracts/canonical.ts';
import type { Colour, DeviceDirectory, InstallTarget, Placement, Role } from './types.ts';

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}
export interface PageOpts {
  /** 1..1000, default 100 */
  limit: number;
  /** opaque, from a previous page's nextCursor */
  cursor?: string;
}

/** What a signed-in user may see. `all` for admins and community-wide roles; otherwise the listed grids. */
export interface Scope {
  all: boolean;
  gridIds: readonly string[];
}

export interface Resident {
  id: string;
  /** Masked for display, e.g. 张*兰. The full name is stored but only shown where a later issue allows it. */
  displayName: string;
  birthYear?: number;
  loneElderly: boolean;
  atRisk: boolean;
}

export interface EmergencyContact {
  name: string;
  /** E.164 */
  phone: string;
  relation: string;
}

export interface Household {
  id: string;
  address: string;
  communityId: string;
  gridId: string;
  buildingId: string;
  unitId: string;
  room: string;
  colour: Colour;
  loneElderly: boolean;
  atRisk: boolean;
  residents: Resident[];
  emergencyContacts: EmergencyContact[];
}

export interface DeviceInfo {
  id: string;
  model: string;
  install: InstallTarget;
  placement: Placement;
  drill: boolean;
  disabled: boolean;
  status: DeviceStatus;
  /** ISO-8601 */
  lastSeen?: string;
  createdAt: string;
}

export interface Coverage {
  gridIds: string[];
  communityIds: string[];
  streetIds: string[];
}

export interface Staff {
  id: string;
  username: string;
  name: string;
  /** E.164, e.g. +8613812345678 */
  phone: string;
  roles: Role[];
  coverage: Coverage;
  disabled: boolean;
  createdAt: string;
}

/** Where a session was signed in: a desk session lasts a working day; a phone session for months, sliding. */
export type SessionDevice = 'desk' | 'phone';
export const SESSION_DEVICES: readonly SessionDevice[] = ['desk', 'phone'];

/** A session as its owner and admins see it: never the token (nor its hash). */
export interface SessionInfo {
  /** public id, for listing and revoking */
  id: string;
  staffId: string;
  device: SessionDevice;
  /** ISO-8601 */
  createdAt: string;
  /** ISO-8601; written at most once an hour, so accurate to the hour */
  lastUsedAt: string;
  /** ISO-8601 */
  expiresAt: string;
  /** a short description of the browser or app that signed in, e.g. "Chrome on Android" */
  userAgent?: string;
}

export interface HierarchyNode {
  id: string;
  name: string;
  parentId?: string;
  level: 'district' | 'street' | 'community' | 'grid' | 'building' | 'unit' | 'area';
}

export interface DeviceStateRow {
  deviceId: string;
  status: DeviceStatus;
  /** epoch ms */
  lastSeen?: number;
}

export class RegistryError extends Error {
  constructor(
    readonly code: 'not_found' | 'conflict' | 'invalid',
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
  }
}

export interface Registry {
  readonly devices: DeviceDirectory;

  // address hierarchy
  listNodes(level: HierarchyNode['level'], parentId?: string): Promise<HierarchyNode[]>;
  /** Households visible in the scope; filters combine with AND. */
  listHouseholds(
    filter: { gridId?: string; colour?: Colour; buildingId?: string },
    scope: Scope,
    page: PageOpts,
  ): Promise<Page<Household>>;
  getHousehold(id: string): Promise<Household | undefined>;

  // devices
  listDevices(
    filter: { householdId?: string; buildingId?: string; gridId?: string; model?: string; status?: DeviceStatus },
    scope: Scope,
    page: PageOpts,
  ): Promise<Page<DeviceInfo>>;
  getDevice(id: string): Promise<DeviceInfo | undefined>;
  /** Creates a device with a fresh random secret (stored as a scrypt hash) and returns the secret once. */
  provisionDevice(input: {
    id: string;
    model: string;
    install: InstallTarget;
    drill?: boolean;
  }): Promise<{ id: string; secret: string }>;
  /** Persists status / last-seen in batches (called by the device status tracker). */
  saveDeviceStates(rows: readonly DeviceStateRow[]): Promise<void>;

  // staff accounts
  listStaff(page: PageOpts): Promise<Page<Staff>>;
  getStaff(id: string): Promise<Staff | undefined>;
  createStaff(input: {
    username: string;
    name: string;
    phone: string;
    roles: Role[];
    coverage?: Partial<Coverage>;
    password: string;
  }): Promise<Staff>;
  updateStaff(
    id: string,
    patch: { name?: string; phone?: string; roles?: Role[]; coverage?: Partial<Coverage>; disabled?: boolean },
  ): Promise<Staff>;
  setPassword(id: string, password: string): Promise<void>;
  /** Checks a login; undefined when the user is unknown, disabled or the password is wrong (same timing). */
  verifyLogin(username: string, password: string): Promise<Staff | undefined>;
  /** Creates or resets the bootstrap `admin` account with this password. */
  ensureAdmin(password: string): Promise<void>;

  // sessions (the token is returned once; only its hash is stored)
  /**
   * Signs a staff member in for `ttlMs`. `sliding`: every use (at most one write an hour) moves the expiry to
   * `ttlMs` after that use (phone sessions), instead of a fixed end (desk sessions).
   */
  createSession(
    staffId: string,
    ttlMs: number,
    opts?: { device?: SessionDevice; sliding?: boolean; userAgent?: string },
  ): Promise<{ token: string; expiresAt: Date; id: string; device: SessionDevice }>;
  resolveSession(token: string): Promise<Staff | undefined>;
  /**
   * Like resolveSession, with the session itself; records the use (at most once an hour) and slides a sliding
   * session's expiry (`renewed`: it moved, so a cookie carrying the session should be sent again).
   */
  authenticateSession(token: string): Promise<{ staff: Staff; session: SessionInfo; renewed: boolean } | undefined>;
  revokeSession(token: string): Promise<void>;
  /** The live (unexpired) sessions of a staff member, newest first. */
  listSessions(staffId: string): Promise<SessionInfo[]>;
  /** A live session by its public id. */
  getSession(id: string): Promise<SessionInfo | undefined>;
  /** Ends a session by its public id; false when there was none. */
  revokeSessionById(id: string): Promise<boolean>;
  /** Ends every session of a staff member; returns how many. */
  revokeStaffSessions(staffId: string): Promise<number>;

  /** The scope a staff member may see, from roles and coverage. */
  scopeOf(staff: Staff): Scope;
  /**
   * The grids a staff member's own coverage reaches (grids, and the grids of covered communities and streets),
   * whatever their roles: "their" households, as opposed to everything an all-seeing role may look at.
   */
  coveredGrids(staff: Staff): readonly string[];
  /** Residents' unmasked full names by resident id: personal data, for the few roles that need it. */
  residentNames(householdId: string): Promise<Map<string, string>>;
}
