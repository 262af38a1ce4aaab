// The parent portal in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core; nothing is downloaded). A real `baobao serve`
// runs on a fresh database with a simulated clock; plans are created through
// the API as an admin would. Run by scripts/test after the Rust suite.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BIN = process.env.BAOBAO_BIN ?? path.resolve('../target/debug/baobao');
const OUT = path.resolve(process.env.BAOBAO_E2E_OUT ?? 'out');
const SCREENSHOTS = path.resolve(process.env.BAOBAO_SCREENSHOTS ?? path.join(OUT, 'screenshots'));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSWORD = 'a long password';

let server, base, admin, browser, dataDir, database, plans = {};

function freePort() {
  return new Promise((resolve) => {
    const listener = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = listener.address();
      listener.close(() => resolve(port));
    });
  });
}

async function api(method, route, body, token) {
  const response = await fetch(base + route, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json().catch(() => null);
  return { status: response.status, json };
}

async function setClock(now) {
  const { status, json } = await api('POST', '/v1/admin/clock', { now }, admin);
  assert.equal(status, 200, JSON.stringify(json));
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), 'baobao-e2e-'));
  database = process.env.BAOBAO_E2E_DATABASE ?? `sqlite://${dataDir}/e2e.db`;
  const env = { ...process.env, BAOBAO_DATA_DIR: dataDir, RUST_LOG: 'warn' };
  execFileSync(BIN, ['migrate', '--database', database], { env });
  execFileSync(BIN, ['staff', 'create', '--database', database, '--email', 'admin@e2e.example', '--role', 'admin'],
    { env: { ...env, BAOBAO_STAFF_PASSWORD: 'admin-password-1' } });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['serve', '--database', database, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir,
    '--clock', 'simulated', '--gateway', 'simulated',
    // Every page of this suite comes from 127.0.0.1: the per-address limits are not what it tests.
    '--sign-ups-per-address-per-hour', '10000', '--sign-ins-per-address-per-minute', '10000'],
    { env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${base}/readyz`)).ok) break; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  const session = await api('POST', '/v1/auth/sessions', { email: 'admin@e2e.example', password: 'admin-password-1', realm: 'staff' });
  admin = session.json.token;
  await setClock('2027-01-10T02:00:00Z');
  const monthly = await api('POST', '/v1/plans', {
    service: 'edu', name: { 'zh-CN': '宝宝学堂 月度会员', en: 'Baobao Learning, monthly' },
    policy: { price: { amount_minor: 3900, currency: 'CNY' }, period: 'P1M', notice_days: 7, cooling_off_days: 7,
      allow_immediate: true, refund_on_immediate: 'prorated', channels: ['self_service', 'written_notice'],
      written_notice_address: '上海市徐汇区示例路 88 号', retention_days: 30,
      legal_holds: [{ category: 'invoices', basis: '《发票管理办法》第二十九条', retain_years: 5 }] },
  }, admin);
  assert.equal(monthly.status, 201, JSON.stringify(monthly.json));
  plans.monthly = monthly.json;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
});

/** A browser tab that counts the pages it loads and the clicks made in it. */
async function journeyPage(locale, width = 1280) {
  const context = await browser.newContext({ locale, viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  // The pages' Content-Security-Policy must never have to block anything of their own.
  page.cspViolations = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) page.cspViolations.push(message.text());
  });
  const counts = { pages: 0, clicks: 0 };
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) counts.pages += 1; });
  const click = async (locator) => { counts.clicks += 1; await locator.click(); };
  const reset = () => { counts.pages = 1; counts.clicks = 0; };
  return { context, page, counts, click, reset };
}

async function signUp(page, { name, email, locale }) {
  await page.goto(`${base}/signup`);
  await page.getByLabel(/Your name|您的姓名/).fill(name);
  await page.getByLabel(/^Email|^邮箱/).fill(email);
  await page.getByLabel(/^Password|^密码/).fill(PASSWORD);
  await page.getByLabel(/^Language|^语言/).selectOption(locale);
  await page.getByLabel(/Time zone|时区/).selectOption('Asia/Shanghai');
  await page.getByRole('button', { name: /Create account|注册/ }).click();
  await page.waitForURL(/\/plans$/);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function assertAccessible(page, label) {
  assert.deepEqual(page.cspViolations ?? [], [], `${label}: the page's own content broke its Content-Security-Policy`);
  // Evaluated through the DevTools protocol, which the page's CSP (no inline
  // scripts) rightly does not allow a <script> tag for.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`), [], `${label} has accessibility violations`);
}

const journeys = {};

test('a parent signs up, subscribes and cancels in English; cancelling takes no more than subscribing', async () => {
  const { context, page, counts, click, reset } = await journeyPage('en-US');
  await signUp(page, { name: 'Amy Chen', email: 'amy@example.com', locale: 'en' });

  // Subscribe: catalogue → terms → the subscription.
  reset();
  await click(page.getByRole('link', { name: 'Terms and subscribe' }).first());
  await page.waitForURL(/\/plans\/pln_/);
  const accept = page.getByLabel('I have read these terms and accept them.');
  assert.equal(await accept.isChecked(), false, 'the acceptance box is never pre-ticked');
  await assertAccessible(page, 'plan page');
  await shot(page, 'plan-desktop');
  await click(accept);
  await click(page.getByRole('button', { name: 'Subscribe' }));
  await page.waitForURL(/\/services\/sub_.*subscribed=1/);
  journeys.subscribe = { ...counts };
  await page.getByText('You are subscribed.').waitFor();
  await page.getByText(/Cancel by 2027-02-03 10:00 to avoid the next charge\./).waitFor();
  const serviceUrl = page.url().replace(/\?.*$/, '');

  // Cancel: the subscription → options and quote → the receipt.
  await page.goto(serviceUrl);
  reset();
  await click(page.getByRole('link', { name: 'Cancel this subscription' }));
  await page.waitForURL(/\/cancel$/);
  const options = page.getByRole('radio');
  assert.equal(await options.count(), 1, 'inside cooling-off the only option is to end now');
  // With nothing to choose between, the one option is already chosen.
  assert.equal(await options.nth(0).isChecked(), true);
  await page.getByText(/full refund of 39\.00 CNY/).waitFor();
  await assertAccessible(page, 'cancel page');
  await shot(page, 'cancel-desktop');
  await click(page.getByRole('radio', { name: 'End now' }));
  await click(page.getByRole('button', { name: 'Confirm cancellation' }));
  await page.waitForURL(/\/receipts\/rcp_.*new=1/);
  journeys.cancel = { ...counts };
  await page.getByRole('heading', { name: 'Cancellation receipt' }).waitFor();
  await page.getByText(/^BB-2027/).first().waitFor();
  await page.getByText(/Your subscription has ended\. A refund is sent as soon as the payment provider accepts it/).waitFor();
  await assertAccessible(page, 'receipt page');
  await shot(page, 'receipt-desktop');
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.getByRole('navigation').isVisible(), false, 'the printed receipt has no navigation');
  await shot(page, 'receipt-print');
  await page.emulateMedia({ media: 'screen' });

  assert.ok(journeys.cancel.pages <= journeys.subscribe.pages, JSON.stringify(journeys));
  assert.ok(journeys.cancel.clicks <= journeys.subscribe.clicks, JSON.stringify(journeys));
  assert.equal(journeys.cancel.pages, 3);
  writeFileSync(path.join(OUT, 'journeys.json'), JSON.stringify(journeys, null, 2));

  // The signed JSON verifies offline with the server's key.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the signed receipt (JSON)' }).click()]);
  const receiptFile = path.join(OUT, 'receipt.json');
  await download.saveAs(receiptFile);
  const verified = execFileSync(BIN, ['verify', receiptFile, '--data-dir', dataDir, '--server', base]).toString();
  // And it is in the server's audit log: an inclusion proof against a signed tree head.
  assert.match(verified, /OK: in the audit log at leaf \d+, included in the tree of \d+ entries/);
  assert.match(verified, /^OK: cancellation receipt rcp_/);

  // The receipt states its place in the log, and its proof of logging
  // checks offline with nothing but the keys.
  await page.getByText(/^Entry \d+ of this provider's public audit log$/).waitFor();
  await page.getByText('Technical details').click();
  const [proofDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the proof of logging (JSON)' }).click()]);
  const proofFile = path.join(OUT, 'proof-of-logging.json');
  await proofDownload.saveAs(proofFile);
  const offline = execFileSync(BIN, ['verify', receiptFile, '--data-dir', dataDir, '--proof', proofFile]).toString();
  assert.match(offline, /OK: in the audit log at leaf \d+/);

  // The public check page checks it in the browser too: signature, leaf,
  // signed head and inclusion proof, by the page's own script; an altered
  // copy fails there.
  await page.goto(`${base}/check`);
  await page.getByLabel('Its signed file (.json)').setInputFiles(receiptFile);
  await page.getByLabel('Its proof of logging, if you kept one (optional)').setInputFiles(proofFile);
  await page.getByRole('button', { name: 'Check in this browser' }).click();
  await page.getByText('Genuine, checked in your browser: signed by us and in our audit log.').waitFor();
  await page.getByText(/^✓ Checked in your browser: the document is entry \d+ of our audit log/).waitFor();
  await assertAccessible(page, 'check page, checked in the browser');
  await shot(page, 'check-in-browser');
  const altered = JSON.parse(readFileSync(receiptFile, 'utf8'));
  altered.body.received_at = '2020-01-01T00:00:00Z';
  const alteredFile = path.join(OUT, 'receipt-altered.json');
  writeFileSync(alteredFile, JSON.stringify(altered));
  await page.getByLabel('Its signed file (.json)').setInputFiles(alteredFile);
  await page.getByLabel('Its proof of logging, if you kept one (optional)').setInputFiles([]);
  await page.getByRole('button', { name: 'Check in this browser' }).click();
  await page.getByText('This document cannot be confirmed. See below what did not match.').waitFor();
  await page.getByText(/^✗ The signature does not match/).waitFor();
  await page.getByText(/^✗ Our audit log has no entry for this document/).waitFor();

  // The statement: the charge and the cooling-off refund, and the CSV.
  await page.goto(`${base}/statement`);
  await page.getByRole('cell', { name: 'Charge', exact: true }).waitFor();
  await page.getByRole('cell', { name: 'Refund', exact: true }).waitFor();
  // A refund shows where its money is: the gateway confirmed it, with its reference.
  await page.getByRole('cell', { name: /^Sent \(reference sim:refund:/ }).waitFor();
  await assertAccessible(page, 'statement page');
  await shot(page, 'statement-desktop');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download as CSV' }).click()]);
  const csvFile = path.join(OUT, 'statement.csv');
  await csv.saveAs(csvFile);
  const lines = readFileSync(csvFile, 'utf8').trim().split('\n');
  assert.equal(lines[0], 'id,created_at,kind,amount_minor,currency,subscription_id,period_start,period_end,note,status,gateway_reference');
  assert.ok(lines.some((l) => l.includes(',charge,3900,CNY,')) && lines.some((l) => l.includes(',refund,3900,CNY,')), lines.join('\n'));

  await page.goto(`${base}/receipts`);
  assert.equal(await page.getByRole('link', { name: /Cancellation receipt · BB-/ }).count(), 1);
  await context.close();
});

test('中文：注册、订阅、在周期结束时取消、撤回取消', async () => {
  const { context, page } = await journeyPage('zh-CN');
  await page.goto(`${base}/signup`);
  await page.getByRole('heading', { name: '注册账户' }).waitFor();
  await signUp(page, { name: '王芳', email: 'wang@example.com', locale: 'zh-CN' });
  await page.getByRole('heading', { name: '套餐' }).waitFor();
  await page.getByRole('link', { name: '查看条款并订阅' }).first().click();
  await page.getByText('每月 39.00 元').first().waitFor();
  await page.getByText(/书面通知请寄至：上海市徐汇区示例路 88 号/).waitFor();
  await shot(page, 'plan-zh-CN');
  await page.getByLabel('我已阅读并接受以上条款。').check();
  await page.getByRole('button', { name: '订阅' }).click();
  await page.getByText('订阅成功，回执如下。').waitFor();
  const serviceUrl = page.url().replace(/\?.*$/, '');

  // Past the cooling-off period, all three ways out are on the table.
  await setClock('2027-01-20T02:00:00Z');
  await page.goto(serviceUrl);
  await page.getByText(/请在 2027-02-03 10:00 之前取消，以免产生下一次扣费。/).waitFor();
  await shot(page, 'service-zh-CN');
  await page.getByRole('link', { name: '取消此订阅' }).click();
  await page.getByRole('radio', { name: '在本周期结束时结束' }).waitFor();
  await page.getByRole('radio', { name: '立即结束' }).waitFor();
  await page.getByText('想保留吗？').waitFor();
  await shot(page, 'cancel-zh-CN');
  // Submitting without a choice explains itself next to the options.
  await page.getByRole('button', { name: '确认取消' }).click({ noWaitAfter: true });
  await page.getByRole('radio', { name: '在本周期结束时结束' }).check();
  await page.getByLabel('您为什么离开？（选填）').selectOption('child_outgrew');
  await page.getByRole('button', { name: '确认取消' }).click();
  await page.getByRole('heading', { name: '取消回执' }).waitFor();
  await page.getByText(/您的订阅将持续到 2027-02-10 10:00/).waitFor();
  await shot(page, 'receipt-zh-CN');

  // Resume is one click from the subscription page.
  await page.goto(serviceUrl);
  await page.getByText('将于 2027-02-10 结束，之后不再扣费。').waitFor();
  await page.getByRole('button', { name: '保留订阅（撤回取消）' }).click();
  await page.getByText('已撤回取消，订阅继续有效。').waitFor();
  await page.getByText('有效', { exact: true }).first().waitFor();
  // The language switch works on every page and is remembered.
  await page.getByRole('link', { name: 'English' }).click();
  await page.getByRole('link', { name: 'Cancel this subscription' }).waitFor();
  await page.getByRole('link', { name: 'My services' }).click();
  await page.getByRole('heading', { name: 'My services' }).waitFor();
  await context.close();
});

test('failure paths: wrong password, an expired form, and someone else\'s subscription by URL', async () => {
  const owner = await journeyPage('en-US');
  await signUp(owner.page, { name: 'Owner', email: 'owner@example.com', locale: 'en' });
  await owner.page.getByRole('link', { name: 'Terms and subscribe' }).first().click();
  await owner.page.getByLabel('I have read these terms and accept them.').check();
  await owner.page.getByRole('button', { name: 'Subscribe' }).click();
  await owner.page.waitForURL(/\/services\/sub_/);
  const ownerService = owner.page.url().replace(/\?.*$/, '');

  // Subscribing without ticking the box says so, next to the box.
  await owner.page.goto(`${base}/plans`);
  await owner.page.getByRole('link', { name: 'Terms and subscribe' }).first().click();
  await owner.page.getByRole('button', { name: 'Subscribe' }).click();
  await owner.page.getByRole('alert').getByText('Tick the box to accept the terms, or go back.').waitFor();

  const stranger = await journeyPage('en-US');
  await stranger.page.goto(`${base}/login`);
  await stranger.page.getByLabel('Email').fill('owner@example.com');
  await stranger.page.getByLabel('Password').fill('not the password');
  await stranger.page.getByRole('button', { name: 'Sign in' }).click();
  await stranger.page.getByRole('alert').getByText('The email or password is not correct.').waitFor();
  assert.equal(await stranger.page.getByLabel('Email').inputValue(), 'owner@example.com');

  // A form whose CSRF token no longer matches is refused, and nothing happens.
  await stranger.page.goto(`${base}/login`);
  await stranger.context.clearCookies();
  await stranger.page.getByLabel('Email').fill('owner@example.com');
  await stranger.page.getByLabel('Password').fill(PASSWORD);
  const refused = stranger.page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST');
  await stranger.page.getByRole('button', { name: 'Sign in' }).click();
  assert.equal((await refused).status(), 403);
  await stranger.page.getByText('This form has expired. Please go back, reload the page and try again.').waitFor();

  // Someone else's subscription by URL: not found, and it stays as it was.
  await signUp(stranger.page, { name: 'Stranger', email: 'stranger@example.com', locale: 'en' });
  for (const url of [ownerService, `${ownerService}/cancel`, `${ownerService}/terms`]) {
    const response = await stranger.page.goto(url);
    assert.equal(response.status(), 404, url);
    await stranger.page.getByText('We could not find that page.').waitFor();
  }
  const csrf = await stranger.page.locator('input[name=csrf]').first().inputValue();
  const attempt = await stranger.page.request.post(`${ownerService}/cancel`, { form: { csrf, quote_id: 'quo_x', option: 'now' } });
  assert.equal(attempt.status(), 404);
  await owner.page.goto(ownerService);
  await owner.page.getByText('Cancel this subscription').waitFor();
  await owner.context.close();
  await stranger.context.close();
});

test('the portal works by keyboard alone on a 375-pixel phone screen', async () => {
  const { context, page } = await journeyPage('en-US', 375);
  await page.goto(`${base}/signup`);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling on the sign-up page');
  await shot(page, 'signup-phone');
  await signUp(page, { name: 'Kim', email: 'kim@example.com', locale: 'en' });
  const tabTo = async (matches) => {
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(matches)) return;
    }
    assert.fail(`no focusable element matched ${matches}`);
  };
  await tabTo(() => document.activeElement?.textContent?.trim() === 'Terms and subscribe');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/plans\/pln_/);
  await tabTo(() => document.activeElement?.name === 'accept');
  await page.keyboard.press('Space');
  await tabTo(() => document.activeElement?.textContent?.trim() === 'Subscribe');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/services\/sub_/);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling on the subscription page');
  await shot(page, 'service-phone');
  await tabTo(() => document.activeElement?.textContent?.trim() === 'Cancel this subscription');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/cancel$/);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling on the options page');
  await shot(page, 'cancel-phone');
  await tabTo(() => document.activeElement?.name === 'option');
  await page.keyboard.press('Space');
  await tabTo(() => document.activeElement?.textContent?.trim() === 'Confirm cancellation');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/receipts\/rcp_/);
  await shot(page, 'receipt-phone');
  await page.goto(`${base}/services`);
  await assertAccessible(page, 'services page');
  await shot(page, 'services-phone');
  await context.close();
});

test('a parent takes a copy of the child\'s data and has it deleted, with a certificate', async () => {
  const { context, page } = await journeyPage('en-US');
  await signUp(page, { name: 'Dana', email: 'dana@example.com', locale: 'en' });
  await page.getByRole('link', { name: 'Terms and subscribe' }).first().click();
  await page.getByLabel('I have read these terms and accept them.').check();
  await page.getByRole('button', { name: 'Subscribe' }).click();
  await page.waitForURL(/\/services\/sub_/);
  // The family's child and a record written by the learning app.
  const token = (await api('POST', '/v1/auth/sessions', { email: 'dana@example.com', password: PASSWORD })).json.token;
  const family = (await api('GET', '/v1/subscriptions/' + page.url().match(/sub_[a-z0-9]+/)[0], null, token)).json.family_id;
  const child = (await api('POST', `/v1/families/${family}/children`, { name: 'Mia', birth_date: '2019-03-01', consent: true }, token)).json.id;
  const key = (await api('POST', '/v1/api-keys', { service: 'edu', name: 'learning app' }, admin)).json.key;
  const record = await api('POST', `/v1/children/${child}/records`, { kind: 'learning_progress', recorded_at: '2027-01-09T08:00:00Z', body: { lesson: 'pinyin', score: 93 } }, key);
  assert.equal(record.status, 201, JSON.stringify(record.json));

  await page.getByRole('link', { name: "Children's data" }).click();
  await page.getByRole('heading', { name: "Your children's data" }).waitFor();
  await page.getByRole('button', { name: 'Prepare an export' }).click();
  let download;
  for (let i = 0; i < 100 && !download; i++) {
    await page.reload();
    if (await page.getByRole('link', { name: 'Download the ZIP' }).count()) download = page.getByRole('link', { name: 'Download the ZIP' }).first();
    else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(download, 'the export became ready');
  await assertAccessible(page, 'data page');
  await shot(page, 'data-desktop');
  const [zip] = await Promise.all([page.waitForEvent('download'), download.click()]);
  const zipFile = path.join(OUT, 'export.zip');
  await zip.saveAs(zipFile);
  const zipChecked = execFileSync(BIN, ['verify', zipFile, '--data-dir', dataDir, '--server', base]).toString();
  assert.match(zipChecked, /^OK: export exp_/);
  assert.match(zipChecked, /OK: in the audit log at leaf \d+/);
  // The export's own page, opened offline on a phone: in the family's
  // language, each child by name, readable, and no accessibility violation at all.
  const index = execFileSync('python3', ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("index.html").decode())', zipFile]).toString();
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 375, height: 800 });
  await phone.setContent(index);
  await phone.getByRole('heading', { name: "Your family's data export" }).waitFor();
  await phone.getByRole('heading', { name: 'Mia' }).waitFor();
  await phone.getByRole('cell', { name: 'pinyin' }).waitFor();
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth), false, 'the export page scrolls sideways at 375 px');
  await phone.evaluate(AXE_SOURCE);
  const axe = await phone.evaluate(async () => await window.axe.run(document, { resultTypes: ['violations'] }));
  assert.deepEqual(axe.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target).join(', ')}`), [], 'the export page has accessibility violations');
  await shot(phone, 'export-index-en-375');
  await phone.close();

  // Deleting asks for a deliberate tick, then shows the signed certificate.
  await page.getByLabel('What to delete').selectOption('edu');
  await page.getByRole('button', { name: 'Delete now' }).click();
  await page.getByRole('alert').getByText('Tick the box to confirm, or leave this page.').waitFor();
  await page.getByLabel('What to delete').selectOption('edu');
  await page.getByLabel('I understand this cannot be undone.').check();
  await page.getByRole('button', { name: 'Delete now' }).click();
  await page.waitForURL(/\/receipts\/rcp_.*deleted=1/);
  await page.getByRole('heading', { name: 'Deletion certificate' }).waitFor();
  await page.getByText('Deleted. Keep this certificate: it is your proof.').waitFor();
  await page.getByText('learning_progress: 1').waitFor();
  await shot(page, 'certificate-desktop');
  const records = await api('GET', `/v1/children/${child}/records`, null, token);
  assert.equal(records.json.records.length, 0);
  await context.close();
});

/** The narrowest text column on the page (a fact's label or value, a table
 * cell), and whether anything makes the page scroll sideways. */
async function layout(page) {
  return page.evaluate(() => {
    const cells = [...document.querySelectorAll('main dl.facts dt, main dl.facts dd, main td, main th')]
      .filter((e) => {
        // Shown, and on the page (a stacked table's header row is moved off it for screen readers).
        const r = e.getBoundingClientRect();
        return e.getClientRects().length > 0 && e.textContent.trim() !== '' && r.right > 0 && r.left < window.innerWidth;
      });
    const widths = cells.map((e) => e.getBoundingClientRect().width);
    return { narrowest: Math.round(Math.min(...widths)), cells: cells.length, sideways: document.documentElement.scrollWidth > window.innerWidth };
  });
}

/** A receipt or certificate, printed to A4 by the browser, is one page. */
async function printsOnOnePage(page, label) {
  const pdf = (await page.pdf({ format: 'A4', printBackground: true })).toString('latin1');
  const pages = (pdf.match(/\/Type\s*\/Page[^s]/g) || []).length;
  assert.equal(pages, 1, `${label} prints on ${pages} A4 pages`);
}

for (const [locale, language] of [['en-US', 'en'], ['zh-CN', 'zh-CN']]) {
  test(`every page a parent reads fits a phone and a desk, in ${language}: options, receipt, statement, data, certificate`, async () => {
    const narrowest = {};
    for (const width of [375, 1280]) {
      const { context, page } = await journeyPage(locale, width);
      const email = `fit-${language}-${width}@example.com`;
      await signUp(page, { name: language === 'en' ? 'Robin Example-Longname' : '王小明', email, locale: language });
      const token = (await api('POST', '/v1/auth/sessions', { email, password: PASSWORD })).json.token;
      const subscribed = await api('POST', '/v1/subscriptions', { plan_id: plans.monthly.id, accept_policy_sha256: plans.monthly.policy.sha256 }, token);
      assert.equal(subscribed.status, 201, JSON.stringify(subscribed.json));
      const family = subscribed.json.subscription.family_id;
      // The parent adds their child in the portal: refused without the consent box ticked, then added.
      await page.goto(`${base}/data`);
      await page.locator('#child-name').fill('小明');
      await page.locator('#child-birth').fill('2019-03-01');
      await page.locator('form[action="/data/children"] button').click();
      await page.locator('#child-error').waitFor();
      assert.equal(await page.locator('#child-name').inputValue(), '小明', 'what was typed is kept');
      await page.locator('#child-birth').fill('2019-03-01');
      await page.locator('form[action="/data/children"] input[name=consent]').check();
      await page.locator('form[action="/data/children"] button').click();
      await page.waitForURL(/\/data\?child=added/);
      await page.locator('#children-title ~ ul li', { hasText: '小明' }).waitFor();
      const children = await api('GET', `/v1/families/${family}/children`, null, token);
      assert.equal(children.json.length ?? children.json.children?.length, 1, JSON.stringify(children.json));
      const measure = async (name) => {
        const seen = await layout(page);
        assert.equal(seen.sideways, false, `${name} at ${width} px in ${language} scrolls sideways`);
        assert.ok(seen.cells > 0, `${name}: no text columns found to measure`);
        if (width === 375) assert.ok(seen.narrowest >= 120, `${name} at 375 px in ${language}: a column is ${seen.narrowest} px wide`);
        narrowest[`${name}@${width}`] = seen.narrowest;
        await shot(page, `${name}-${language}-${width}`);
      };
      // The public check of a receipt: no sideways scroll, accessible.
      await page.goto(`${base}/check`);
      assert.equal((await layout(page)).sideways, false, `the check page at ${width} px in ${language} scrolls sideways`);
      await assertAccessible(page, `check page at ${width} px in ${language}`);
      await page.goto(`${base}/services/${subscribed.json.subscription.id}/cancel`);
      await measure('options');
      await page.locator('input[name=option]').first().check();
      await page.locator('form[action$="/cancel"] button[type=submit]').click();
      await page.waitForURL(/\/receipts\/rcp_/);
      await measure('receipt');
      await page.locator('dl.facts dd', { hasText: language === 'en' ? 'Robin Example-Longname' : '王小明' }).waitFor();
      await printsOnOnePage(page, `receipt in ${language}`);
      await page.goto(`${base}/statement`);
      await measure('statement');
      await page.goto(`${base}/data`);
      await page.locator('form[action="/data/exports"] button').click();
      await page.waitForURL(/\/data/);
      await measure('data');
      assert.equal(await page.locator('select[name=scope]').inputValue(), 'edu', 'the default deletes one service\'s data, never the account');
      await page.locator('select[name=scope]').selectOption('edu');
      await page.locator('form[action="/data/deletion"] input[name=confirm]').check();
      await page.locator('form[action="/data/deletion"] button').click();
      await page.waitForURL(/\/receipts\/rcp_.*deleted=1/);
      await measure('certificate');
      await printsOnOnePage(page, `certificate in ${language}`);
      await assertAccessible(page, `certificate at ${width} px in ${language}`);
      await context.close();
    }
    console.log(`narrowest text column (px), ${language}: ${JSON.stringify(narrowest)}`);
  });
}

for (const [locale, language] of [['en-US', 'en'], ['zh-CN', 'zh-CN']]) {
  test(`a parent complains from the subscription's page and reads the answer, on a phone and a desk, in ${language}`, async () => {
    const agentEmail = `agent-${language}@e2e.example`;
    const created = await api('POST', '/v1/staff', { email: agentEmail, role: 'agent', password: 'agent-password-1' }, admin);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const agent = (await api('POST', '/v1/auth/sessions', { email: agentEmail, password: 'agent-password-1', realm: 'staff' })).json.token;
    const narrowest = {};
    for (const width of [375, 1280]) {
      const { context, page } = await journeyPage(locale, width);
      const email = `complain-${language}-${width}@example.com`;
      await signUp(page, { name: language === 'en' ? 'Robin Example-Longname' : '王小明', email, locale: language });
      const token = (await api('POST', '/v1/auth/sessions', { email, password: PASSWORD })).json.token;
      const subscribed = await api('POST', '/v1/subscriptions', { plan_id: plans.monthly.id, accept_policy_sha256: plans.monthly.policy.sha256 }, token);
      assert.equal(subscribed.status, 201, JSON.stringify(subscribed.json));
      const subscription = subscribed.json.subscription.id;
      // From the subscription's page, one link to the complaint form about it.
      await page.goto(`${base}/services/${subscription}`);
      await page.locator(`a[href="/disputes/new?subscription_id=${subscription}"]`).click();
      await page.waitForURL(/\/disputes\/new/);
      assert.equal((await layout(page)).sideways, false, `the complaint form at ${width} px in ${language} scrolls sideways`);
      await assertAccessible(page, `complaint form at ${width} px in ${language}`);
      await page.locator('#kind').selectOption('wrong_charge');
      const words = language === 'en' ? 'The advert said 29 yuan a month; I was charged 39.' : '广告上写的是每月 29 元，却扣了 39 元。';
      await page.locator('#description').fill(words);
      await page.locator('#evidence').setInputFiles({ name: 'advert.png', mimeType: 'image/png', buffer: Buffer.from('89504e470d0a1a0a' + '00'.repeat(64), 'hex') });
      await page.locator('form[action="/disputes"] button[type=submit]').click();
      await page.waitForURL(/\/disputes\/dsp_[a-z0-9]+\?new=1/);
      const id = page.url().match(/dsp_[a-z0-9]+/)[0];
      await page.locator('p.notice[role=status]').waitFor();
      await page.getByText(words).waitFor();
      // Support answers; the parent reads it on the timeline.
      const reply = language === 'en' ? 'We are checking the advert you sent.' : '我们正在核实您发来的广告。';
      const answered = await api('POST', `/v1/disputes/${id}/messages`, { text: reply }, agent);
      assert.equal(answered.status, 201, JSON.stringify(answered.json));
      await page.reload();
      await page.getByText(reply).waitFor();
      const seen = await layout(page);
      assert.equal(seen.sideways, false, `the complaint at ${width} px in ${language} scrolls sideways`);
      if (width === 375) assert.ok(seen.narrowest >= 120, `the complaint at 375 px in ${language}: a column is ${seen.narrowest} px wide`);
      narrowest[`complaint@${width}`] = seen.narrowest;
      await assertAccessible(page, `complaint at ${width} px in ${language}`);
      await shot(page, `complaint-${language}-${width}`);
      if (width === 1280) {
        // The dossier downloads and checks offline with the provider's key.
        const [download] = await Promise.all([page.waitForEvent('download'), page.locator(`a[href="/disputes/${id}/dossier.zip"]`).click()]);
        const dossier = path.join(OUT, `dossier-${language}.zip`);
        await download.saveAs(dossier);
        const checked = execFileSync(BIN, ['verify', dossier, '--data-dir', dataDir, '--server', base]).toString();
        assert.match(checked, new RegExp(`^OK: dossier of dispute ${id}`));
        assert.match(checked, /receipts verify, each proved in the audit log/);
        assert.match(checked, /OK: in the audit log at leaf \d+/);
        // Its own page, opened offline on a phone: both languages, readable.
        const index = execFileSync('python3', ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read("index.html").decode())', dossier]).toString();
        const phone = await context.newPage();
        await phone.setViewportSize({ width: 375, height: 800 });
        await phone.setContent(index);
        await phone.getByRole('heading', { name: '投诉材料包 · Complaint dossier' }).waitFor();
        assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth), false, 'the dossier page scrolls sideways at 375 px');
        await phone.close();
      }
      await context.close();
    }
    // Without an account: the page to complain with a kept receipt.
    for (const width of [375, 1280]) {
      const { context, page } = await journeyPage(locale, width);
      await page.goto(`${base}/complain`);
      assert.equal((await layout(page)).sideways, false, `/complain at ${width} px in ${language} scrolls sideways`);
      await assertAccessible(page, `/complain at ${width} px in ${language}`);
      await shot(page, `complain-${language}-${width}`);
      await context.close();
    }
    console.log(`narrowest text column (px) on a complaint, ${language}: ${JSON.stringify(narrowest)}`);
  });
}
