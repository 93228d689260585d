import './instrument';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { ConfigError, loadConfig } from './config';
import { EmbeddedDatabaseError, startEmbeddedDatabase } from './embedded-database';

async function bootstrap(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = new Logger('Example');
  if (!config.databaseUrl) {
    const database = await startEmbeddedDatabase('.data');
    process.env.DATABASE_URL = database.url;
    logger.log(`DATABASE_URL is unset: started an embedded PostgreSQL with its data under ${database.dataDir}`);
  }
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(config.port);
  logger.log(`Listening on http://localhost:${config.port}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof ConfigError || error instanceof EmbeddedDatabaseError ? error.message : error);
  process.exit(1);
});
