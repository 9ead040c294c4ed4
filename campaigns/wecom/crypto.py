"""WeCom callback message crypto (the WXBizMsgCrypt scheme).

msg_signature = SHA1 over the sorted concatenation of token, timestamp, nonce and the encrypted
text. The text is AES-256-CBC with key = base64(EncodingAESKey + "="), IV = the key's first 16
bytes, PKCS#7 padded to 32-byte blocks; the plaintext is 16 random bytes, the message length
(4 bytes, big-endian), the message, then the receive id (the corp id), which must be ours.
"""
import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class CryptoError(ValueError):
    """The callback is not one WeCom signed and encrypted for this brand."""


class SignatureError(CryptoError):
    """The signature does not match: not signed with this brand's token."""


def signature(token, timestamp, nonce, encrypted):
    parts = sorted(str(part) for part in (token, timestamp, nonce, encrypted))
    return hashlib.sha1("".join(parts).encode()).hexdigest()


def aes_key(encoding_aes_key):
    if len(encoding_aes_key or "") != 43:
        raise CryptoError("EncodingAESKey must be 43 characters.")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise CryptoError("EncodingAESKey is not base64.") from None
    if len(key) != 32:
        raise CryptoError("EncodingAESKey does not decode to 32 bytes.")
    return key


class MsgCrypt:
    def __init__(self, token, encoding_aes_key, receive_id):
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id

    def _cipher(self):
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def verify(self, msg_signature, timestamp, nonce, encrypted):
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected, (msg_signature or "").lower()):
            raise SignatureError("The message signature does not match.")

    def decrypt(self, encrypted):
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("The encrypted text is not base64.") from None
        if not raw or len(raw) % 16:
            raise CryptoError("The encrypted text is not a whole number of AES blocks.")
        decryptor = self._cipher().decryptor()
        padded = decryptor.update(raw) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
            raise CryptoError("The padding is not valid.")
        plain = padded[:-pad]
        if len(plain) < 20:
            raise CryptoError("The plaintext is too short.")
        (length,) = struct.unpack(">I", plain[16:20])
        if 20 + length > len(plain):
            raise CryptoError("The message length is larger than the plaintext.")
        message, receive_id = plain[20:20 + length], plain[20 + length:]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise CryptoError("The message is addressed to another corp.")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("The message is not UTF-8.") from None

    def verify_and_decrypt(self, msg_signature, timestamp, nonce, encrypted):
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, message, random_prefix=None):
        body = message.encode("utf-8")
        prefix = random_prefix if random_prefix is not None else os.urandom(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def sign(self, timestamp, nonce, encrypted):
        return signature(self.token, timestamp, nonce, encrypted)
