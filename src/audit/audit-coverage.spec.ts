import { Controller, Delete, Get, Logger, Patch, Post, Put } from '@nestjs/common';
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

describe('AuditCoverage', () => {
  async function coverage(auditHttp: boolean) {
    const moduleRef = await Test.createTestingModule({
      imports: [DiscoveryModule],
      controllers: [ContractsController],
      providers: [AuditCoverage, { provide: AUDIT_OPTIONS, useValue: resolveAuditOptions({ auditHttp }) }],
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
