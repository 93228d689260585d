// Imported first by main.ts: Sentry must be initialised before Nest and its libraries load.
import * as Sentry from '@sentry/nestjs';
import { loadConfig } from './config';

let sentryDsn: string | undefined;
try {
  ({ sentryDsn } = loadConfig(process.env));
} catch {
  // main.ts validates the same environment and stops with the message.
}
if (sentryDsn) {
  Sentry.init({ dsn: sentryDsn, environment: process.env.SENTRY_ENVIRONMENT ?? 'development', sendDefaultPii: false });
}
