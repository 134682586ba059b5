/**
 * Households as the rules see them, held in memory (rules look them up per message) and re-read from the registry
 * periodically and on demand, so a reclassified household or a new lone-elderly flag reaches the rules.
 */
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Registry } from '../registry/port.ts';
import type { HouseholdDirectory } from './engine.ts';
import type { HouseholdInfo } from './types.ts';

export class RegistryHouseholds implements HouseholdDirectory, Module {
  readonly name = 'rule-households';
  private map = new Map<string, HouseholdInfo>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Pick<Registry, 'listHouseholds'>,
    private readonly log: Logger,
    private readonly refreshMs = 300_000,
  ) {}

  get(id: string): HouseholdInfo | undefined {
    return this.map.get(id);
  }

  get size(): number {
    return this.map.size;
  }

  async refresh(): Promise<void> {
    const next = new Map<string, HouseholdInfo>();
    let cursor: string | undefined;
    do {
      const page = await this.registry.listHouseholds({}, { all: true, gridIds: [] }, { limit: 1000, cursor });
      for (const h of page.items) {
        next.set(h.id, {
          id: h.id,
          colour: h.colour,
          loneElderly: h.loneElderly,
          atRisk: h.atRisk,
          gridId: h.gridId,
          buildingId: h.buildingId,
          unitId: h.unitId,
          communityId: h.communityId,
        });
      }
      cursor = page.nextCursor;
    } while (cursor);
    this.map = next;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, 'rules: reloading households failed'));
    }, this.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }
}
