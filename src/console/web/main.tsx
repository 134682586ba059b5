/** The operations console's entry: styles, the chosen language's texts, then the app into #app. */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { App } from './app.tsx';
import { loadLang, settings } from './i18n.ts';

async function start(): Promise<void> {
  const { lang } = settings.get();
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  await loadLang(lang).catch(() => undefined); // the Chinese texts are built in: they stand in
  const root = document.getElementById('app');
  if (!root) return;
  root.textContent = '';
  render(<App />, root);
}

void start();
