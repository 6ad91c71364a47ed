import { describe, expect, it } from 'vitest';
import { isServerLibrary } from './libraries.js';

describe('isServerLibrary', () => {
  it.each(['@segment/analytics-node', 'analytics-node', 'analytics-python', 'analytics-ruby', 'analytics-go', 'analytics-java', 'analytics-php', 'analytics.NET', 'analytics-dotnet', ' analytics-node '])('%s runs on a server', (name) => {
    expect(isServerLibrary(name)).toBe(true);
  });

  it.each(['analytics.js', 'tracklane-tag', 'analytics-ios', 'analytics-android', 'analytics-react-native', 'analytics-nodejs-lookalike', '', null, undefined])('%s does not', (name) => {
    expect(isServerLibrary(name)).toBe(false);
  });
});
