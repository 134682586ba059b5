/** Domain types of the registry (DOMAIN.md): the address hierarchy, households, people, staff and devices. */

export const COLOURS = ['red', 'orange', 'yellow', 'blue', 'green'] as const;
export type Colour = (typeof COLOURS)[number];

export const ROLES = [
  'grid_worker',
  'grid_leader',
  'building_leader',
  'unit_leader',
  'committee_member',
  'party_volunteer',
  'community_director',
  'street_duty_officer',
  'depot_keeper',
  'drill_controller',
  'evaluator',
  'admin',
] as const;
export type Role = (typeof ROLES)[number];

/** Where a device is installed; exactly one of these is set. */
export type InstallTarget =
  | { kind: 'household'; householdId: string }
  | { kind: 'building'; buildingId: string }
  | { kind: 'unit'; unitId: string }
  | { kind: 'area'; areaId: string };

/** A device's place resolved up the hierarchy: what ingest attaches to every reading and event. */
export interface Placement {
  householdId?: string;
  unitId?: string;
  buildingId?: string;
  areaId?: string;
  gridId?: string;
  communityId?: string;
  colour?: Colour;
}

/** What ingest and the broker need to know about a device, cached in memory. */
export interface DeviceRecord {
  id: string;
  model: string;
  install: InstallTarget;
  placement: Placement;
  drill: boolean;
  disabled: boolean;
  /** scrypt hash in the `scrypt$N$r$p$salt$hash` form; never leaves the server. */
  secretHash: string;
}

/** Read side of the device registry used by the broker (auth) and ingest (enrichment). */
export interface DeviceDirectory {
  get(deviceId: string): DeviceRecord | undefined;
  /** Re-reads one device (after provisioning or a change), or all when no id is given. */
  refresh(deviceId?: string): Promise<void>;
  all(): Iterable<DeviceRecord>;
}
