import { Global, Module } from '@nestjs/common';
import { loadConfig } from './config';

/** Injection token of the example app's {@link AppConfig}. */
export const APP_CONFIG = Symbol('APP:CONFIG');

/** Reads the environment once, when the app is created. */
@Global()
@Module({
  providers: [{ provide: APP_CONFIG, useFactory: () => loadConfig(process.env) }],
  exports: [APP_CONFIG],
})
export class AppConfigModule {}
