import { routeOf } from './http-request';

describe('routeOf', () => {
  const request = (extra: object) => ({ method: 'POST', headers: {}, url: '/items/7?token=s3cr3t', ...extra });

  it('takes the route pattern Express matched', () => {
    expect(routeOf(request({ route: { path: '/items/:id' } }))).toBe('/items/:id');
  });

  it('takes the route pattern Fastify matched', () => {
    expect(routeOf(request({ routeOptions: { url: '/items/:id' } }))).toBe('/items/:id');
  });

  it('falls back to the path without its query string, which may carry secrets', () => {
    expect(routeOf(request({}))).toBe('/items/7');
  });
});
