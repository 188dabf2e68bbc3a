import { describe, expect, it } from 'vitest';
import { safeNext } from '../../src/console/console-access.ts';
import { consoleCsp } from '../../src/console/console-plugin.ts';
import { escapeHtml, href, html, raw } from '../../src/console/html.ts';

describe('the console template tag', () => {
  it('escapes every interpolation: text and quoted attributes', () => {
    const hostile = `<script>alert(1)</script>"'&`;
    expect(html`<p title="${hostile}">${hostile}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;</p>',
    );
    expect(escapeHtml('a&b')).toBe('a&amp;b');
  });

  it('nests fragments without escaping them twice, joins arrays, renders nothing for null/undefined/false', () => {
    const items = ['<a>', 'b'];
    expect(html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`.text).toBe(
      '<ul><li>&lt;a&gt;</li><li>b</li></ul>',
    );
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
  });

  it('passes markup through only by raw(), and a look-alike object is escaped', () => {
    expect(html`${raw('<b>ok</b>')}`.text).toBe('<b>ok</b>');
    expect(html`${{ text: '<b>', toString: () => '<b>' }}`.text).toBe('&lt;b&gt;');
  });

  it('href percent-encodes each value into a console path and refuses to leave the console', () => {
    expect(href`/console/approvals/${'a/../b?c=<d>'}`).toBe('/console/approvals/a%2F..%2Fb%3Fc%3D%3Cd%3E');
    expect(() => href`${'javascript:alert(1)'}`).toThrow();
  });

  it('sends people back only to console paths', () => {
    expect(safeNext('/console/waivers?state=active')).toBe('/console/waivers?state=active');
    for (const bad of [
      'https://evil.example',
      '//evil.example',
      '/console//evil',
      '/console/../v1',
      '/v1/decisions',
      42,
      '/console/login',
    ]) {
      expect(safeNext(bad)).toBe('/console/approvals');
    }
  });

  it('the CSP allows scripts only by nonce, nothing inline, no eval, no framing', () => {
    const csp = consoleCsp('abc');
    expect(csp).toContain("script-src 'nonce-abc'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
  });
});
