/** Sign in: username, password, and "keep this phone signed in" (a long-lived phone session). */
import { useState } from 'preact/hooks';
import { ApiError } from '../api.ts';
import { setLang, settings, t } from '../i18n.ts';
import { homeRoute, login, session } from '../session.ts';
import { navigate } from '../router.ts';
import { useStore } from '../store.ts';

export function LoginPage({ expired }: { expired: boolean }) {
  const { lang } = useStore(settings);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [phone, setPhone] = useState(() => window.matchMedia?.('(max-width: 700px)').matches ?? false);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const submit = async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await login(username.trim(), password, phone);
      const s = session.get();
      if (s.state === 'in' && (location.hash === '' || location.hash === '#/' || location.hash === '#')) {
        navigate(homeRoute(s.me), true);
      }
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? t('login_failed')
          : err instanceof ApiError && err.status === 429
            ? t('login_rate')
            : err instanceof Error
              ? err.message
              : String(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login" data-testid="page-login">
      <form class="login-card" onSubmit={submit}>
        <div class="login-head">
          <span class="brand-mark big" aria-hidden="true">
            ✚
          </span>
          <h1>{t('app_name')}</h1>
          <button
            type="button"
            class="btn btn-ghost btn-small"
            onClick={() => void setLang(lang === 'zh' ? 'en' : 'zh')}
            aria-label={t('lang_switch_label')}
            data-testid="lang-toggle"
          >
            {t('lang_switch')}
          </button>
        </div>
        <h2 class="sr-only">{t('login_title')}</h2>
        {expired ? (
          <p class="notice notice-info" data-testid="session-expired">
            {t('session_expired')}
          </p>
        ) : null}
        <label class="field">
          <span>{t('login_username')}</span>
          <input
            type="text"
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            required
            data-testid="login-username"
          />
        </label>
        <label class="field">
          <span>{t('login_password')}</span>
          <input
            type="password"
            name="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
            data-testid="login-password"
          />
        </label>
        <label class="check check-big">
          <input
            type="checkbox"
            checked={phone}
            onChange={(e) => setPhone(e.currentTarget.checked)}
            data-testid="login-phone"
            aria-describedby="phone-hint"
          />
          <span>{t('login_phone')}</span>
        </label>
        <p id="phone-hint" class="muted small">
          {t('login_phone_hint')}
        </p>
        {error ? (
          <p class="notice notice-error" role="alert" data-testid="login-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="btn btn-primary btn-big btn-wide" disabled={busy} data-testid="login-submit">
          {t('login_submit')}
        </button>
      </form>
    </main>
  );
}
