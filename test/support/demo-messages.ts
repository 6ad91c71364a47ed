// A demo traffic message (services/demo/segment-types.ts) for the demo's unit tests: a track
// call with a fixed browser context, the given fields on top.
import type { SegmentMessage } from '../../services/demo/segment-types.js';

export function demoTrack(fields: Pick<SegmentMessage, 'messageId' | 'anonymousId' | 'timestamp' | 'event' | 'properties'> & { path?: string }): SegmentMessage {
  const { path = '/', ...message } = fields;
  return {
    type: 'track',
    ...message,
    context: {
      ip: '8.8.8.8',
      userAgent: 'test',
      page: { url: `https://app.example.com${path}`, path, referrer: '', title: 'Page', search: '' },
      locale: 'en-US',
      timezone: 'UTC',
      screen: { width: 1, height: 1 },
      library: { name: 'test', version: '0' },
    },
  };
}
