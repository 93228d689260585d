import { Controller, Delete, Get, Injectable, Logger, Patch, Post, Put, SetMetadata, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { AuditCoverage } from './audit-coverage';
import { resolveAuditOptions } from './audit-options';
import { AUDIT_OPTIONS } from './audit.constants';
import { Audited } from './audited.decorator';

@Controller('contracts')
class ContractsController {
  @Post()
  @Audited('contract_created')
  create() {}

  @Put(':id')
  replace() {}

  @Patch(':id/archive')
  archiveOne() {}

  @Delete(':id')
  @Audited('contract_deleted')
  remove() {}

  @Get(':id')
  read() {}
}

// What @Mutation()/@Query() (@nestjs/graphql), @MessagePattern()/@EventPattern() (@nestjs/microservices)
// and @SubscribeMessage() (@nestjs/websockets) store on a handler; those packages are not installed here.
const Mutation = () => SetMetadata('graphql:resolver_type', 'Mutation');
const Query = () => SetMetadata('graphql:resolver_type', 'Query');
const MessagePattern = (pattern: string) => SetMetadata('microservices:pattern', [pattern]);
const SubscribeMessage = () => SetMetadata('websockets:message_mapping', true);

@Injectable()
class ContractsResolver {
  @Mutation()
  signContract() {}

  @Query()
  contract() {}
}

@Controller()
class ContractEventsController {
  @MessagePattern('contract.signed')
  onSigned() {}
}

@Injectable()
class ContractsGateway {
  @SubscribeMessage()
  onComment() {}
}

describe('AuditCoverage', () => {
  async function coverage(auditHttp: boolean, others: { controllers?: Type[]; providers?: Type[] } = {}) {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      controllers: [ContractsController, ...(others.controllers ?? [])],
      providers: [AuditCoverage, { provide: AUDIT_OPTIONS, useValue: resolveAuditOptions({ auditHttp }) }, ...(others.providers ?? [])],
    }).compile();
    return moduleRef.get(AuditCoverage);
  }

  it('warns once at start-up, listing each undecorated mutating route and its derived action', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      (await coverage(true)).onApplicationBootstrap();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(
        '2 mutating routes have no @Audited() action: PUT /contracts/:id (ContractsController.replace → contracts.replace); ' +
          'PATCH /contracts/:id/archive (ContractsController.archiveOne → contracts.archive_one)',
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('warns that GraphQL mutations, RPC and WebSocket handlers are not audited, naming each', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const others = { controllers: [ContractEventsController], providers: [ContractsResolver, ContractsGateway] };
      (await coverage(true, others)).onApplicationBootstrap();
      expect(warn).toHaveBeenCalledTimes(2);
      expect(warn).toHaveBeenLastCalledWith(
        '3 handlers outside HTTP are not audited (the interceptor records HTTP requests only; ' +
          'record their mutations with AuditService.log()): RPC ContractEventsController.onSigned; ' +
          'GraphQL mutation ContractsResolver.signContract; WebSocket ContractsGateway.onComment',
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('says nothing when HTTP auditing is off', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      (await coverage(false)).onApplicationBootstrap();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});
