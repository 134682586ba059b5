/**
 * Schema migrations, in code so that they ship inside the bundle and run the same on SQLite and PostgreSQL.
 * Names sort lexically (Kysely applies them in name order): `NNN_topic`. Never edit a released migration; add one.
 * DDL is written with Kysely's schema builder using only types both dialects understand: text, integer, bigint
 * (see the conventions in src/store/db.ts).
 */
import { type Kysely, type Migration, sql } from 'kysely';
import { deviceCommands008 } from '../commands/service.ts';
import { drills009 } from '../drills/store.ts';
import { dutyRoster006 } from '../notify/roster.ts';
import { notificationBatches005, notifications004 } from '../notify/store.ts';
import { consoleSessions007 } from '../registry/access-log.ts';
import { supplies010 } from '../supplies/store.ts';
import { visits003 } from '../visits/migration.ts';

const registry001: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('district')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('street')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('district_id', 'text', (c) => c.notNull().references('district.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('community')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('street_id', 'text', (c) => c.notNull().references('street.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('grid')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('community_id', 'text', (c) => c.notNull().references('community.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('building')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('grid_id', 'text', (c) => c.notNull().references('grid.id'))
      .addColumn('community_id', 'text', (c) => c.notNull().references('community.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('unit')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('building_id', 'text', (c) => c.notNull().references('building.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('charging_area')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('community_id', 'text', (c) => c.notNull().references('community.id'))
      .addColumn('building_id', 'text', (c) => c.references('building.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('household')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('unit_id', 'text', (c) => c.notNull().references('unit.id'))
      .addColumn('building_id', 'text', (c) => c.notNull().references('building.id'))
      .addColumn('grid_id', 'text', (c) => c.notNull().references('grid.id'))
      .addColumn('community_id', 'text', (c) => c.notNull().references('community.id'))
      .addColumn('room', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('colour', 'text', (c) => c.notNull().check(colourCheck()))
      .addColumn('lone_elderly', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('at_risk', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('household_unit_room_uq', ['unit_id', 'room'])
      .execute();
    await db.schema
      .createTable('resident')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('household_id', 'text', (c) => c.notNull().references('household.id').onDelete('cascade'))
      .addColumn('full_name', 'text', (c) => c.notNull())
      .addColumn('birth_year', 'integer')
      .addColumn('lone_elderly', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('at_risk', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('emergency_contact')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('household_id', 'text', (c) => c.notNull().references('household.id').onDelete('cascade'))
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('phone', 'text', (c) => c.notNull())
      .addColumn('relation', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('staff')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('phone', 'text')
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('staff_role')
      .addColumn('staff_id', 'text', (c) => c.notNull().references('staff.id').onDelete('cascade'))
      .addColumn('role', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('staff_role_pk', ['staff_id', 'role'])
      .execute();
    await db.schema
      .createTable('staff_coverage')
      .addColumn('staff_id', 'text', (c) => c.notNull().references('staff.id').onDelete('cascade'))
      .addColumn('level', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('staff_coverage_pk', ['staff_id', 'level', 'node_id'])
      .execute();
    await db.schema
      .createTable('session')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('staff_id', 'text', (c) => c.notNull().references('staff.id').onDelete('cascade'))
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('device')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('model', 'text', (c) => c.notNull())
      .addColumn('install_kind', 'text', (c) => c.notNull())
      .addColumn('install_id', 'text', (c) => c.notNull())
      .addColumn('household_id', 'text', (c) => c.references('household.id'))
      .addColumn('unit_id', 'text', (c) => c.references('unit.id'))
      .addColumn('building_id', 'text', (c) => c.references('building.id'))
      .addColumn('area_id', 'text', (c) => c.references('charging_area.id'))
      .addColumn('grid_id', 'text', (c) => c.references('grid.id'))
      .addColumn('community_id', 'text', (c) => c.references('community.id'))
      .addColumn('drill', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('secret_hash', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull().defaultTo('unknown'))
      .addColumn('last_seen', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    // Indexes follow the lookups: the console lists households per grid and colour, households of a building,
    // residents/contacts per household (page assembly), devices per household/building/grid, staff per coverage
    // node, and the session sweeper scans by expiry.
    const indexes: Array<[string, string, string[]]> = [
      ['street_district_idx', 'street', ['district_id']],
      ['community_street_idx', 'community', ['street_id']],
      ['grid_community_idx', 'grid', ['community_id']],
      ['building_grid_idx', 'building', ['grid_id']],
      ['building_community_idx', 'building', ['community_id']],
      ['unit_building_idx', 'unit', ['building_id']],
      ['charging_area_community_idx', 'charging_area', ['community_id']],
      ['household_grid_idx', 'household', ['grid_id', 'colour']],
      ['household_building_idx', 'household', ['building_id']],
      ['household_community_idx', 'household', ['community_id']],
      ['resident_household_idx', 'resident', ['household_id']],
      ['emergency_contact_household_idx', 'emergency_contact', ['household_id']],
      ['staff_coverage_node_idx', 'staff_coverage', ['node_id']],
      ['session_expires_idx', 'session', ['expires_at']],
      ['session_staff_idx', 'session', ['staff_id']],
      ['device_household_idx', 'device', ['household_id']],
      ['device_building_idx', 'device', ['building_id']],
      ['device_grid_idx', 'device', ['grid_id']],
      ['device_area_idx', 'device', ['area_id']],
    ];
    for (const [name, table, columns] of indexes) {
      await db.schema.createIndex(name).on(table).columns(columns).execute();
    }
  },
  async down(db: Kysely<unknown>): Promise<void> {
    for (const t of [
      'device',
      'session',
      'staff_coverage',
      'staff_role',
      'staff',
      'emergency_contact',
      'resident',
      'household',
      'charging_area',
      'unit',
      'building',
      'grid',
      'community',
      'street',
      'district',
    ]) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/** A CHECK keeps a bad import or a manual SQL fix from writing a colour the rest of the system cannot route. */
function colourCheck() {
  return sql<boolean>`colour in ('red', 'orange', 'yellow', 'blue', 'green')`;
}

const alerts002: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    // No foreign keys to household/device/…: an alert is a record of what happened and must outlive a device that
    // is replaced or a household that is re-registered; the placement ids are kept as they were when it opened.
    await db.schema
      .createTable('alert')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('category', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull().check(sql`severity in ('critical', 'major', 'minor', 'info')`))
      .addColumn('status', 'text', (c) =>
        c.notNull().check(sql`status in ('open', 'acknowledged', 'resolved', 'cancelled')`),
      )
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('household_id', 'text')
      .addColumn('unit_id', 'text')
      .addColumn('building_id', 'text')
      .addColumn('area_id', 'text')
      .addColumn('grid_id', 'text')
      .addColumn('community_id', 'text')
      .addColumn('device_id', 'text')
      .addColumn('colour', 'text')
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addColumn('first_seen', 'bigint', (c) => c.notNull())
      .addColumn('last_seen', 'bigint', (c) => c.notNull())
      .addColumn('not_before', 'bigint')
      .addColumn('drill', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('evidence', 'text', (c) => c.notNull())
      .addColumn('resolved_at', 'bigint')
      .addColumn('outcome', 'text')
      .addColumn('acknowledged_at', 'bigint')
      .addColumn('acknowledged_by', 'text')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    // THE dedup guarantee: at most one active alert per key, enforced by the store itself, so that two messages
    // in the same millisecond or two nodes raising at once cannot both open one. Partial indexes exist in both
    // SQLite (3.8+) and PostgreSQL; the predicate is a literal list so both accept it in DDL.
    await db.schema
      .createIndex('alert_active_key_uq')
      .on('alert')
      .column('key')
      .unique()
      .where(sql<boolean>`status in ('open', 'acknowledged')`)
      .execute();
    // Listing: newest first within a status (the console's default view), per household, per grid (scope).
    const indexes: Array<[string, string[]]> = [
      ['alert_status_first_seen_idx', ['status', 'first_seen', 'id']],
      ['alert_first_seen_idx', ['first_seen', 'id']],
      ['alert_household_idx', ['household_id']],
      ['alert_grid_idx', ['grid_id']],
    ];
    for (const [name, columns] of indexes) {
      await db.schema.createIndex(name).on('alert').columns(columns).execute();
    }
    await db.schema
      .createTable('alert_timeline')
      .addColumn('alert_id', 'text', (c) => c.notNull().references('alert.id').onDelete('cascade'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('by', 'text', (c) => c.notNull())
      .addColumn('via', 'text', (c) => c.notNull())
      .addColumn('note', 'text')
      // the primary key orders an alert's entries and makes a lost race on `seq` an error, never a silent duplicate
      .addPrimaryKeyConstraint('alert_timeline_pk', ['alert_id', 'seq'])
      .execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('alert_timeline').ifExists().execute();
    await db.schema.dropTable('alert').ifExists().execute();
  },
};

/**
 * Device events already counted into an alert, keyed by the event's own id: replaying an event after a crash (the
 * ingest journal) or a redelivered duplicate that slipped past the Redis dedupe cannot count twice.
 */
const alertEvents011: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('alert_event')
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('alert_id', 'text', (c) => c.notNull().references('alert.id').onDelete('cascade'))
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('alert_event_pk', ['device_id', 'event_id'])
      .execute();
    await db.schema.createIndex('alert_event_ts').on('alert_event').column('ts').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('alert_event').ifExists().execute();
  },
};

/**
 * One device event may raise several alerts (the third stairwell cut-off is an `ebike_charging` repeat and opens the
 * `ebike_charging_repeated`): an event is counted once per alert key, not once overall. The existing records are
 * kept (a replay after the upgrade must still count once): copied with their alert's key into the new table, which
 * then takes the old one's name.
 */
const alertEventKeys012: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('alert_event_keyed')
      .addColumn('device_id', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('alert_key', 'text', (c) => c.notNull())
      .addColumn('alert_id', 'text', (c) => c.notNull().references('alert.id').onDelete('cascade'))
      .addColumn('ts', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('alert_event_key_pk', ['device_id', 'event_id', 'alert_key'])
      .execute();
    await sql`INSERT INTO alert_event_keyed (device_id, event_id, alert_key, alert_id, ts)
      SELECT e.device_id, e.event_id, a.key, e.alert_id, e.ts FROM alert_event e JOIN alert a ON a.id = e.alert_id`.execute(
      db,
    );
    await db.schema.dropTable('alert_event').execute();
    await db.schema.alterTable('alert_event_keyed').renameTo('alert_event').execute();
    await db.schema.createIndex('alert_event_key_ts').on('alert_event').column('ts').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropTable('alert_event').ifExists().execute();
  },
};

/**
 * mosquitto's own hash of each device secret (`$7$…`, src/registry/secrets.ts mosquittoHash), for the password_file
 * generated for a plain mosquitto (src/broker/mosquitto-files.ts). Null for devices provisioned before: they need a
 * secret rotation before they can use such a broker, and the generator lists them.
 */
const deviceMosquittoHash013: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('device').addColumn('mosquitto_hash', 'text').execute();
  },
  async down(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('device').dropColumn('mosquitto_hash').execute();
  },
};

/** All migrations, by name. Other modules append theirs here (`002_alerts`, …). */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '001_registry': registry001,
  '002_alerts': alerts002,
  '003_visits': visits003,
  '004_notifications': notifications004,
  '005_notification_batches': notificationBatches005,
  '006_duty_roster': dutyRoster006,
  '007_console_sessions': consoleSessions007,
  '008_device_commands': deviceCommands008,
  '009_drills': drills009,
  '010_supplies': supplies010,
  '011_alert_events': alertEvents011,
  '012_alert_event_keys': alertEventKeys012,
  '013_device_mosquitto_hash': deviceMosquittoHash013,
};
