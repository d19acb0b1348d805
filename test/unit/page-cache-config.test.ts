/** PAGE_CACHE_MB: read once by src/config.ts, with one line naming it on a bad value. */
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PAGE_CACHE_MB, loadConfig, MAX_PAGE_CACHE_MB } from '../../src/config.js';

describe('PAGE_CACHE_MB', () => {
  it('defaults to DEFAULT_PAGE_CACHE_MB; 0 turns the cache off; empty is unset', () => {
    expect(DEFAULT_PAGE_CACHE_MB).toBe(32);
    expect(loadConfig({ HOSTNAME: 'box' }).pageCacheMb).toBe(DEFAULT_PAGE_CACHE_MB);
    expect(loadConfig({ HOSTNAME: 'box', PAGE_CACHE_MB: '' }).pageCacheMb).toBe(DEFAULT_PAGE_CACHE_MB);
    expect(loadConfig({ HOSTNAME: 'box', PAGE_CACHE_MB: '0' }).pageCacheMb).toBe(0);
    expect(loadConfig({ HOSTNAME: 'box', PAGE_CACHE_MB: '256' }).pageCacheMb).toBe(256);
  });

  it.each(['-1', '1.5', 'lots', '32MB', String(MAX_PAGE_CACHE_MB + 1)])('refuses %s with one line naming the variable', (value) => {
    let error: unknown;
    try {
      loadConfig({ HOSTNAME: 'box', PAGE_CACHE_MB: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/^PAGE_CACHE_MB: /);
    expect(message).toContain(JSON.stringify(value));
    expect(message).not.toContain('\n');
  });
});
