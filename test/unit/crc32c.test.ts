import { crc32c } from '../../functions/gcp/crc32c';
import { crc32cBase64 } from '../servers/gcs-fake';

describe('crc32c', () => {
  test('matches the published check value and the fake server’s independent implementation', () => {
    // RFC 3720 (iSCSI) check value of CRC-32C over "123456789".
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31 + 7) & 0xff));
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32c(data));
    expect(b.toString('base64')).toBe(crc32cBase64(data));
  });
});
