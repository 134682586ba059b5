/**
 * A short, human description of a User-Agent header for the session list ("Chrome on Android", "WeChat on
 * iPhone", "curl"): enough to recognise one's own devices, and less stored about them than the full header.
 */

const BROWSERS: ReadonlyArray<[RegExp, string]> = [
  [/MicroMessenger\//, 'WeChat'],
  [/DingTalk\//, 'DingTalk'],
  [/Edg(A|iOS)?\//, 'Edge'],
  [/OPR\/|Opera/, 'Opera'],
  [/SamsungBrowser\//, 'Samsung Internet'],
  [/UCBrowser\//, 'UC Browser'],
  [/MQQBrowser\/|QQBrowser\//, 'QQ Browser'],
  [/HuaweiBrowser\//, 'Huawei Browser'],
  [/Firefox\/|FxiOS\//, 'Firefox'],
  [/Chrome\/|CriOS\//, 'Chrome'],
  [/Version\/[\d.]+.*Safari\//, 'Safari'],
];

const SYSTEMS: ReadonlyArray<[RegExp, string]> = [
  [/HarmonyOS|OpenHarmony/, 'HarmonyOS'],
  [/Android/, 'Android'],
  [/iPhone/, 'iPhone'],
  [/iPad/, 'iPad'],
  [/Windows/, 'Windows'],
  [/Mac OS X|Macintosh/, 'macOS'],
  [/CrOS/, 'ChromeOS'],
  [/Linux/, 'Linux'],
];

const TOOLS: ReadonlyArray<[RegExp, string]> = [
  [/^curl\//i, 'curl'],
  [/^Wget\//i, 'Wget'],
  [/^python-requests\//i, 'Python requests'],
  [/^python-httpx\//i, 'Python httpx'],
  [/^Python-urllib\//i, 'Python'],
  [/^okhttp\//i, 'OkHttp'],
  [/^PostmanRuntime\//i, 'Postman'],
  [/^(node|undici)\b/i, 'Node.js'],
  [/^axios\//i, 'axios'],
  [/^Go-http-client\//i, 'Go'],
];

const MAX = 60;

export function shortUserAgent(ua: string | string[] | undefined): string | undefined {
  const text = (Array.isArray(ua) ? ua[0] : ua)
    ?.replace(/\s+/g, ' ') // Node's HTTP parser already refuses other control characters in header values
    .trim()
    .slice(0, 1000);
  if (!text) return undefined;
  for (const [re, name] of TOOLS) if (re.test(text)) return name;
  const browser = BROWSERS.find(([re]) => re.test(text))?.[1];
  const system = SYSTEMS.find(([re]) => re.test(text))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  if (system) return `browser on ${system}`;
  const short = text.split(/[\s(]/)[0] ?? '';
  return (short || text).slice(0, MAX);
}
