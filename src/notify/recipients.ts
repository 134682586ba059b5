/**
 * Who an escalation step reaches: roles relative to the alert's place (its grid's grid workers and leader, the
 * building leaders of that grid, the community's director, the street's duty officer), the household's emergency
 * contacts, the keepers of devices (the community's IT admins), or named staff. Staff are read from the registry and
 * cached briefly; disabled accounts and accounts without a phone are never chosen.
 */
import type { Alert } from '../alerts/types.ts';
import { maskName } from '../logger.ts';
import type { Registry, Staff } from '../registry/port.ts';
import type { Role } from '../registry/types.ts';
import type { RecipientRole } from './policy.ts';

export interface Recipient {
  /** E.164 */
  phone: string;
  staffId?: string;
  /** the policy entry that chose them */
  as: RecipientRole | `staff:${string}`;
  /** masked, for message bodies and logs */
  displayName: string;
}

const ROLE_OF: Partial<Record<RecipientRole, Role>> = {
  grid_worker: 'grid_worker',
  grid_leader: 'grid_leader',
  building_leader: 'building_leader',
  community_director: 'community_director',
  street_duty_officer: 'street_duty_officer',
  device_keeper: 'admin',
};

export class RecipientResolver {
  private staff: Staff[] = [];
  private loadedAt = -Infinity;

  constructor(
    private readonly registry: Pick<Registry, 'listStaff' | 'getHousehold' | 'scopeOf'>,
    private readonly now: () => number = Date.now,
    private readonly cacheMs = 60_000,
  ) {}

  /** Everyone a step's `to` list reaches for this alert, each phone once, in the order of the list. */
  async resolve(
    to: readonly string[],
    alert: Pick<Alert, 'householdId' | 'gridId' | 'communityId'>,
  ): Promise<Recipient[]> {
    await this.loadStaff();
    const out: Recipient[] = [];
    const seen = new Set<string>();
    const add = (r: Recipient) => {
      if (!r.phone || seen.has(r.phone)) return;
      seen.add(r.phone);
      out.push(r);
    };
    for (const entry of to) {
      if (entry.startsWith('staff:')) {
        const s = this.staff.find((x) => x.id === entry.slice(6) && !x.disabled);
        if (s) add(this.fromStaff(s, entry as `staff:${string}`));
        continue;
      }
      const as = entry as RecipientRole;
      if (as === 'emergency_contacts') {
        if (!alert.householdId) continue;
        const h = await this.registry.getHousehold(alert.householdId);
        for (const c of h?.emergencyContacts ?? []) add({ phone: c.phone, as, displayName: maskName(c.name) });
        continue;
      }
      const role = ROLE_OF[as];
      if (!role) continue;
      for (const s of this.staff) {
        if (s.disabled || !s.roles.includes(role)) continue;
        if (!(await this.covers(s, as, alert))) continue;
        add(this.fromStaff(s, as));
      }
    }
    return out;
  }

  /** Forget the cached staff list (after an account changed). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  private async covers(s: Staff, as: RecipientRole, alert: Pick<Alert, 'gridId' | 'communityId'>): Promise<boolean> {
    const scope = this.registry.scopeOf(s);
    // community- and street-wide roles (and admins) cover everything their scope covers
    if (as === 'community_director' || as === 'street_duty_officer' || as === 'device_keeper') {
      if (scope.all) {
        if (as === 'community_director' && alert.communityId && s.coverage.communityIds.length > 0) {
          return s.coverage.communityIds.includes(alert.communityId);
        }
        return true;
      }
    }
    return alert.gridId !== undefined && (scope.all || scope.gridIds.includes(alert.gridId));
  }

  private fromStaff(s: Staff, as: Recipient['as']): Recipient {
    return { phone: s.phone, staffId: s.id, as, displayName: maskName(s.name) };
  }

  private async loadStaff(): Promise<void> {
    if (this.now() - this.loadedAt < this.cacheMs) return;
    const all: Staff[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.registry.listStaff({ limit: 1000, cursor });
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    this.staff = all;
    this.loadedAt = this.now();
  }
}
