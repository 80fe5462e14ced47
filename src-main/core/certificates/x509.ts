// @peculiar/x509 needs reflect-metadata loaded first and a WebCrypto provider; this module is the one
// place that sets both up, so every other file imports x509 from here.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

export { x509 };
