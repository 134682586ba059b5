/** Record a home visit (五色五访): outcome as big buttons, notes, save. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { toast, useBusy } from '../components.tsx';
import { t, VISIT_OUTCOMES, visitOutcomeLabel } from '../i18n.ts';
import type { Visit } from '../types.ts';

export function VisitForm({
  householdId,
  alertId,
  onDone,
}: {
  householdId: string;
  alertId?: string;
  onDone: (saved?: Visit) => void;
}) {
  const [outcome, setOutcome] = useState<string>('ok');
  const [notes, setNotes] = useState('');
  const [busy, run] = useBusy();
  const submit = (ev: Event) => {
    ev.preventDefault();
    void run(async () => {
      const body: Record<string, string> = { outcome };
      if (notes.trim()) body.notes = notes.trim();
      if (alertId) body.alertId = alertId;
      const visit = await api<Visit>(`households/${encodeURIComponent(householdId)}/visits`, { body });
      toast(t('visit_saved'));
      onDone(visit);
    });
  };
  return (
    <form class="visit-form" onSubmit={submit} data-testid="visit-form">
      <fieldset>
        <legend>{t('visit_outcome')}</legend>
        <div class="outcomes">
          {VISIT_OUTCOMES.map((o) => (
            <label key={o} class={`outcome ${outcome === o ? 'selected' : ''}`} data-testid={`visit-outcome-${o}`}>
              <input
                type="radio"
                name={`visit-${householdId}`}
                value={o}
                checked={outcome === o}
                onChange={() => setOutcome(o)}
              />
              <span>{visitOutcomeLabel(o)}</span>
            </label>
          ))}
        </div>
      </fieldset>
      <label class="field">
        <span>{t('visit_notes')}</span>
        <textarea rows={2} maxLength={2000} value={notes} onInput={(e) => setNotes(e.currentTarget.value)} />
      </label>
      <div class="row-actions">
        <button type="submit" class="btn btn-primary btn-big" disabled={busy} data-testid="visit-submit">
          {t('visit_submit')}
        </button>
        <button type="button" class="btn btn-big" onClick={() => onDone()}>
          {t('cancel')}
        </button>
      </div>
    </form>
  );
}
