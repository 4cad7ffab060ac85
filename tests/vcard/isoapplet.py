#!/usr/bin/python3
"""A virtual IsoApplet smart card for OpenSC 0.23, reached through vsmartcard-vpcd.

    /usr/bin/python3 tests/vcard/isoapplet.py [--host 127.0.0.1] [--port 35963] [--trace FILE]

The card connects to vpcd (a PC/SC reader driver of pcscd that listens on TCP) and
answers as a Java Card on which IsoApplet API 00.06 was just installed (branch
main-javacard-v2.2.2 of philipWendland/IsoApplet, the applet OpenSC 0.23's isoApplet
driver accepts): no file system content, no PIN, no key. Everything lives in memory;
a new process is a new blank card. Power-off and reset end the session (verified PIN,
selected file, security environment, chaining) and keep what a card keeps (files,
keys, PINs and their counters).

What the card answers follows the applet's Java source and the Java Card runtime it runs
on, down to the status words of unusual requests, so that OpenSC sees the same card:
- the runtime: the applet is selected by AID (F276A288BCFBA69D34F31001) and answers
  its API version and features; other commands before that get 6986; an uncaught
  Java exception is 6F00; response data accompanies 61xx, 62xx, 63xx and 9xxx only;
- the applet: an ISO 7816-4 file system (SELECT, READ/UPDATE BINARY, CREATE/DELETE
  FILE, with the access conditions of the files' FCP), a PIN (4-16 bytes, 3 tries) and a
  PUK (16 bytes, 5 tries) with the applet's life cycle, on-card RSA-2048 and EC key
  generation, RSA PKCS#1 v1.5 signatures of host-made DigestInfos, ECDSA with SHA-1
  hashed on the card, RSA decryption, command chaining and GET RESPONSE (61xx), GET
  CHALLENGE. Key import (PUT DATA) is refused (6900), as the applet is built.

vpcd's protocol: every message is a 2-byte big-endian length then the bytes. A 1-byte
message is a control code (00 power off, 01 power on, 02 reset, 04 get ATR: answered
with the ATR); anything longer is a command APDU, answered with data + SW1 SW2.
"""

import argparse
import hashlib
import secrets
import socket
import sys
import time
import traceback

from cryptography.hazmat.primitives.asymmetric import padding, rsa

# ---- status words ---------------------------------------------------------------------

SW_OK = 0x9000
SW_BYTES_REMAINING = 0x6100          # | bytes still to fetch with GET RESPONSE
SW_PIN_TRIES_REMAINING = 0x63C0      # | tries left
SW_WRONG_LENGTH = 0x6700
SW_SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
SW_COMMAND_CHAINING_NOT_SUPPORTED = 0x6884
SW_COMMAND_NOT_ALLOWED_GENERAL = 0x6900
SW_INCOMPATIBLE_WITH_FILE_STRUCTURE = 0x6981
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_DATA_INVALID = 0x6984
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_COMMAND_NOT_ALLOWED = 0x6986
SW_APPLET_SELECT_FAILED = 0x6999
SW_WRONG_DATA = 0x6A80
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_FILE_FULL = 0x6A84
SW_INCORRECT_P1P2 = 0x6A86
SW_OFFSET_OUTSIDE_EF = 0x6B00
SW_CORRECT_LENGTH = 0x6C00           # | the right Le
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00                  # what the Java Card runtime answers to an uncaught exception


class CardError(Exception):
    """Ends a command with a status word (an ISOException), with data for 61xx."""

    def __init__(self, sw, data=b""):
        super().__init__(f"SW {sw:04X}")
        self.sw = sw
        self.data = data


class NotFound(Exception):
    """The applet's NotFoundException: a file or TLV tag is not there."""


class InvalidArguments(Exception):
    """The applet's InvalidArgumentsException: malformed TLV or FCP."""


def signed8(b):
    """A byte as Java sees it: the applet compares and indexes with signed bytes."""
    return b - 256 if b >= 0x80 else b


def signed16(hi, lo):
    v = (hi << 8) | lo
    return v - 0x10000 if v >= 0x8000 else v


# ---- APDUs ----------------------------------------------------------------------------

class Apdu:
    """A command APDU, split into the ISO 7816-3 cases as the Java Card runtime does.

    `buf` is the runtime's APDU buffer (the command, then zeros): the applet sometimes
    reads past the data it was given, and then reads zeros. A short APDU's buffer holds
    all 261 bytes a short APDU can have, as on a card (jCardSim's holds 260).
    """

    SHORT_BUFFER = 261
    EXTENDED_BUFFER = 32767 + 10
    SHORT_MAX_OUT = 258          # the most a short APDU's answer may carry (T=0 block)
    EXTENDED_MAX_OUT = 32767

    def __init__(self, raw):
        if len(raw) < 4:
            raise CardError(SW_WRONG_LENGTH)
        self.cla, self.ins, self.p1, self.p2 = raw[:4]
        body = raw[4:]
        self.extended = False
        lc, self.ne = 0, 0                       # Ne: 0 when no Le was given
        if len(body) == 1:                       # case 2
            self.ne = body[0] or 256
        elif len(body) == 3 and body[0] == 0:    # case 2, extended
            self.extended, self.ne = True, signed16(body[1], body[2])
        elif len(body) > 3 and body[0] == 0:     # cases 3 and 4, extended (Lc < 8000)
            self.extended, lc = True, signed16(body[1], body[2])
            if lc > 0 and len(body) == 5 + lc:
                self.ne = signed16(body[-2], body[-1])
            elif lc <= 0 or len(body) != 3 + lc:
                raise CardError(SW_WRONG_LENGTH)
        elif body and body[0] == 0:
            raise CardError(SW_WRONG_LENGTH)
        elif body:                               # cases 3 and 4
            lc = body[0]
            if len(body) == 2 + lc:
                self.ne = body[-1] or 256
            elif len(body) != 1 + lc:
                raise CardError(SW_WRONG_LENGTH)
        self.offset = 7 if self.extended else 5  # where the data starts in buf
        self.lc = lc
        self.buf = bytearray(self.EXTENDED_BUFFER if self.extended else self.SHORT_BUFFER)
        self.buf[:len(raw)] = raw
        self.data = bytes(raw[self.offset:self.offset + lc])
        self.max_out = self.EXTENDED_MAX_OUT if self.extended else self.SHORT_MAX_OUT

    @property
    def p1p2(self):
        return (self.p1 << 8) | self.p2

    @property
    def chaining(self):
        """CLA bit 0x10: more of this command follows."""
        return bool(self.cla & 0x10)

    def selects_applet(self):
        """A SELECT by DF name that the runtime, not the applet, handles (any channel)."""
        return (not self.extended and self.cla & 0xFC == 0 and self.ins == 0xA4
                and self.p1 == 0x04 and self.p2 & 0xE3 == 0)

    def secure_messaging(self):
        if self.cla & 0x40:
            return bool(self.cla & 0x20)
        return bool(self.cla & 0x0C)


# ---- BER-TLV, as the applet's UtilTLV reads and writes it -------------------------------

def decode_length(buf, off):
    """The length field at off: 1 to 3 bytes; 00, 80 and 83..FF are refused."""
    b = buf[off]
    if b == 0x82:
        if buf[off + 1] >= 0x80:
            raise InvalidArguments
        return (buf[off + 1] << 8) | buf[off + 2]
    if b == 0x81:
        return buf[off + 1]
    if 0 < b < 0x80:
        return b
    raise InvalidArguments


def length_field_size(length):
    if length < 0:
        raise InvalidArguments
    return 1 if length < 128 else 2 if length < 256 else 3


def find_tag(buf, off, length, tag):
    """Position of a one-byte tag among the TLVs at off (one level only)."""
    pos = off
    while pos < off + length - 1:
        if buf[pos] == tag:
            return pos
        n = decode_length(buf, pos + 1)
        pos += 1 + length_field_size(n) + n
    raise NotFound


def tlv_consistent(buf, off, length):
    """Whether the TLVs at off end exactly at off + length."""
    pos = off
    while pos < off + length - 1:
        try:
            n = decode_length(buf, pos + 1)
            pos += 1 + length_field_size(n) + n
        except InvalidArguments:
            return False
    return pos == off + length


def tlv_value(buf, off, length, tag):
    """(position, length) of the value of a tag."""
    pos = find_tag(buf, off, length, tag)
    n = decode_length(buf, pos + 1)
    return pos + 1 + length_field_size(n), n


def encode_tlv(tag, value):
    n = len(value)
    size = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 0xFF])
    return tag.to_bytes(2 if tag > 0xFF else 1, "big") + size + value


# ---- the file system ------------------------------------------------------------------

# Offsets, from the 86 tag, of the security condition bytes the applet checks: an 8-byte
# "security attributes in proprietary format" value, an access mode byte then one
# condition per operation (ISO 7816-4 tables 16, 17, 20). 00 = always, FF = never,
# 90 (or 1x) = after the PIN.
ACL_DELETE_SELF = 3
ACL_CREATE_DF = 7
ACL_CREATE_EF = 8
ACL_UPDATE = 8
ACL_READ = 9


class File:
    def __init__(self, fid, fcp):
        self.fid = fid
        self.fcp = bytes(fcp)            # returned as is by SELECT
        self.parent = None
        # Where the applet looks for the 86 tag: after the first two bytes, within the
        # length given by the second one (a byte, so a 81/82 long form means no ACL).
        try:
            self.acl_pos = find_tag(self.fcp, 2, signed8(self.fcp[1]), 0x86)
        except (NotFound, InvalidArguments):
            self.acl_pos = None

    def condition(self, operation):
        return 0x00 if self.acl_pos is None else self.fcp[self.acl_pos + operation]


class DedicatedFile(File):
    MAX_CHILDREN = 30

    def __init__(self, fid, fcp):
        super().__init__(fid, fcp)
        self.children = []

    def add(self, child):
        if len(self.children) >= self.MAX_CHILDREN:
            raise CardError(SW_FILE_FULL)
        child.parent = self
        self.children.append(child)

    def remove(self, fid):
        """The last child takes the place of the removed one, as in the applet."""
        for i, child in enumerate(self.children):
            if child.fid == fid:
                last = self.children.pop()
                if i < len(self.children):
                    self.children[i] = last
                return
        raise NotFound

    def has_name(self, name):
        try:
            pos, n = tlv_value(self.fcp, 2, signed8(self.fcp[1]), 0x84)
        except (NotFound, InvalidArguments):
            return False
        return n == len(name) and self.fcp[pos:pos + n] == name

    def find_by_name(self, name):
        for child in self.children:
            if isinstance(child, DedicatedFile):
                if child.has_name(name):
                    return child
                try:
                    return child.find_by_name(name)
                except NotFound:
                    pass
        raise NotFound

    def find(self, fid, kind=None):
        """Depth-first search for a FID among the descendants; kind: DF or EF class.

        A FID of the wrong kind ends the search of the DF it is in (and, at the top, the
        whole search), as in the applet.
        """
        for child in self.children:
            if child.fid == fid:
                if kind is None or isinstance(child, kind):
                    return child
                raise NotFound
            if isinstance(child, DedicatedFile):
                try:
                    return child.find(fid, kind)
                except NotFound:
                    pass
        raise NotFound

    def find_by_path(self, path):
        """A path of FIDs below this DF; a FID not found is skipped, as in the applet."""
        df = self
        for pos in range(0, len(path) - 1, 2):
            fid = (path[pos] << 8) | path[pos + 1]
            for child in df.children:
                if child.fid == fid:
                    if pos == len(path) - 2:
                        return child
                    if not isinstance(child, DedicatedFile):
                        raise NotFound
                    df = child
                    break
        raise NotFound

    def find_ef_by_sfi(self, sfi):
        for child in self.children:
            if isinstance(child, ElementaryFile) and child.sfi == sfi:
                return child
        raise NotFound


class ElementaryFile(File):
    def __init__(self, fid, fcp):
        super().__init__(fid, fcp)
        self.sfi = fid & 0x1F


class TransparentFile(ElementaryFile):
    def __init__(self, fid, fcp, size):
        super().__init__(fid, fcp)
        if size < 0:                     # Java: new byte[negative size]
            raise CardError(SW_UNKNOWN)
        self.data = bytearray(size)


class RecordFile(ElementaryFile):
    """A linear or cyclic EF: the applet creates them but has no record commands."""

    def __init__(self, fid, fcp, max_records):
        super().__init__(fid, fcp)
        if max_records < 0:              # Java: new Record[negative size]
            raise CardError(SW_UNKNOWN)


class FileSystem:
    """The applet's ISO 7816-4 file system: an MF (3F00), DFs, EFs, and the current DF/EF."""

    MF_FCI = bytes.fromhex("6F07" "820138" "83023F00")

    def __init__(self):
        self.mf = DedicatedFile(0x3F00, self.MF_FCI)
        self.new_session(authenticated=False)

    def new_session(self, authenticated):
        self.current_df, self.current_ef = self.mf, None
        self.authenticated = authenticated   # the file system's own "PIN verified" flag

    def _select(self, f):
        """Selecting a DF keeps the current EF; an EF makes its parent the current DF."""
        if f is None:
            self.current_df, self.current_ef = self.mf, None
        elif isinstance(f, DedicatedFile):
            self.current_df = f
        else:
            self.current_ef, self.current_df = f, f.parent

    def _find_anywhere(self, fid, kind=None):
        if fid == self.mf.fid and kind is not ElementaryFile:
            return self.mf
        return self.mf.find(fid, kind)

    def _authorize(self, f, operation):
        if f is None:
            return
        condition = f.condition(operation)
        if condition == 0x00:
            return
        if (condition == 0x90 or condition & 0x9F == 0x10) and self.authenticated:
            return
        raise CardError(SW_SECURITY_STATUS_NOT_SATISFIED)

    def select(self, apdu):
        if apdu.p2 & 0xF3:
            raise CardError(SW_INCORRECT_P1P2)
        buf, off, lc = apdu.buf, apdu.offset, apdu.lc
        fid = (buf[off] << 8) | buf[off + 1]
        f = None
        try:
            if apdu.p1 == 0x00:                          # MF, or any file by FID
                if lc == 0:
                    f = self.mf
                elif lc == 2:
                    f = self._find_anywhere(fid)
            elif apdu.p1 == 0x01:                        # a DF below the current DF
                f = self.current_df.find(fid, DedicatedFile)
            elif apdu.p1 == 0x02:                        # an EF below the current DF
                f = self.current_df.find(fid, ElementaryFile)
            elif apdu.p1 == 0x03:                        # the parent of the current DF
                if lc != 0 or self.current_df is self.mf:
                    raise NotFound
                f = self.current_df.parent
            elif apdu.p1 == 0x04:                        # by DF name
                f = self.mf if self.mf.has_name(apdu.data) else self.mf.find_by_name(apdu.data)
            elif apdu.p1 == 0x08:                        # path from the MF
                f = self.mf.find_by_path(apdu.data)
            elif apdu.p1 == 0x09:                        # path from the current DF
                f = self.current_df.find_by_path(apdu.data)
            else:
                raise CardError(SW_INCORRECT_P1P2)
        except NotFound:
            raise CardError(SW_FILE_NOT_FOUND) from None
        self._select(f)
        answer = apdu.p2 & 0x0C
        if answer == 0x0C:                               # no answer asked for
            return b""
        if answer == 0x08:                               # FMD: not supported
            raise CardError(SW_INCORRECT_P1P2)
        if f is None:                                    # P1 00 with 1 or 3+ bytes: Java's NPE
            raise CardError(SW_UNKNOWN)
        return f.fcp                                     # the FCP as created, for FCI and FCP

    def _target_ef(self, apdu):
        """(EF, offset) of READ/UPDATE BINARY: by SFI in P1 (offset P2) or the current EF."""
        if apdu.p1 & 0xE0 == 0x80:
            try:
                return self.current_df.find_ef_by_sfi(apdu.p1 & 0x1F), signed8(apdu.p2)
            except NotFound:
                raise CardError(SW_FILE_NOT_FOUND) from None
        if apdu.p1 & 0x80 == 0:
            return self.current_ef, apdu.p1p2
        raise CardError(SW_INCORRECT_P1P2)

    def read_binary(self, apdu):
        ef, offset = self._target_ef(apdu)
        self._authorize(ef, ACL_READ)
        if not isinstance(ef, TransparentFile):
            raise CardError(SW_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        if offset < 0 or offset >= len(ef.data):
            raise CardError(SW_OFFSET_OUTSIDE_EF)
        if apdu.ne < 0:                                  # a negative extended Le: Java's bad length
            raise CardError(SW_UNKNOWN)
        return bytes(ef.data[offset:offset + apdu.ne])   # Le 00 reads up to 256 bytes

    def update_binary(self, apdu):
        ef, offset = self._target_ef(apdu)
        self._authorize(ef, ACL_UPDATE)
        if not isinstance(ef, TransparentFile):
            raise CardError(SW_INCOMPATIBLE_WITH_FILE_STRUCTURE)
        if len(ef.data) < offset + apdu.lc or 32767 - offset < apdu.lc:
            raise CardError(SW_OFFSET_OUTSIDE_EF)
        if offset < 0:                                   # Java: negative array index
            raise CardError(SW_UNKNOWN)
        ef.data[offset:offset + apdu.lc] = apdu.data
        self._select(ef)
        return b""

    def create_file(self, apdu):
        if apdu.p1p2:
            raise CardError(SW_INCORRECT_P1P2)
        try:
            f = self._new_file(apdu.buf, apdu.offset, apdu.lc)
        except (NotFound, InvalidArguments):
            raise CardError(SW_DATA_INVALID) from None
        self.current_df.add(f)
        self._select(f)
        return b""

    def _new_file(self, buf, off, length):
        """A file from the FCP of CREATE FILE (the applet's getSafeFile)."""
        if len(buf) <= off + length or buf[off] not in (0x62, 0x6F):
            raise InvalidArguments
        inner = decode_length(buf, off + 1)
        if inner != length - 1 - length_field_size(inner):
            raise InvalidArguments
        inner_off = off + 1 + length_field_size(inner)
        if not tlv_consistent(buf, inner_off, inner):
            raise InvalidArguments
        pos, n = tlv_value(buf, inner_off, inner, 0x83)
        if n != 2:
            raise InvalidArguments
        fid = (buf[pos] << 8) | buf[pos + 1]
        try:
            self._find_anywhere(fid)
            raise InvalidArguments                       # FIDs are unique on the card
        except NotFound:
            pass
        try:
            if tlv_value(buf, inner_off, inner, 0x86)[1] != 8:
                raise InvalidArguments                   # an ACL has all 8 bytes or none
        except NotFound:
            pass
        pos = find_tag(buf, inner_off, inner, 0x82)
        if not 1 <= decode_length(buf, pos + 1) <= 6:
            raise InvalidArguments
        descriptor = buf[pos + 2]
        fcp = bytes(buf[off:off + length])
        if descriptor & 0x3F == 0x38:
            self._authorize(self.current_df, ACL_CREATE_DF)
            return DedicatedFile(fid, fcp)
        if descriptor & 0x30:
            raise InvalidArguments
        self._authorize(self.current_df, ACL_CREATE_EF)
        max_records = 8
        if buf[pos + 1] == 5:                            # the applet reads the count here
            max_records = signed8(buf[pos + 2])
        elif buf[pos + 1] == 6:
            if buf[pos + 6] != 0:
                raise InvalidArguments                   # at most 255 records
            max_records = signed8(buf[pos + 7])
        structure = descriptor & 0x07
        if structure == 0:
            raise InvalidArguments
        if structure != 1:
            return RecordFile(fid, fcp, max_records)
        size = 128                                       # no 81 tag: 128 bytes
        try:
            pos = find_tag(buf, off + 2, signed8(buf[off + 1]), 0x81)
            if buf[pos + 1] == 2:
                size = signed16(buf[pos + 2], buf[pos + 3])
            elif buf[pos + 1] == 1:
                size = signed8(buf[pos + 2])
            else:
                raise CardError(SW_DATA_INVALID)
        except NotFound:
            pass
        return TransparentFile(fid, fcp, size)

    def delete_file(self, apdu):
        if apdu.p1p2:
            raise CardError(SW_INCORRECT_P1P2)
        if apdu.lc != 2:
            raise CardError(SW_WRONG_LENGTH)
        fid = (apdu.data[0] << 8) | apdu.data[1]
        try:
            f = self._find_anywhere(fid)
        except NotFound:
            raise CardError(SW_FILE_NOT_FOUND) from None
        if f is self.mf:
            raise CardError(SW_COMMAND_NOT_ALLOWED)
        self._authorize(f, ACL_DELETE_SELF)
        self.current_df, self.current_ef = f.parent, None
        f.parent.remove(fid)
        return b""


# ---- PIN and PUK ------------------------------------------------------------------------

class OwnerPin:
    """javacard.framework.OwnerPIN: a value, a try counter, a "validated" session flag."""

    def __init__(self, try_limit, size):
        self.try_limit = try_limit
        self.value = bytes(size)             # a new OwnerPIN holds zeros
        self.tries = try_limit
        self.validated = False

    def check(self, candidate):
        """A try is used up before comparing; a blocked PIN fails without a try."""
        self.validated = False
        if self.tries == 0:
            return False
        self.tries -= 1
        if len(candidate) != len(self.value) or not secrets.compare_digest(candidate, self.value):
            return False
        self.validated = True
        self.tries = self.try_limit
        return True

    def update(self, value):
        self.value = bytes(value)
        self.tries = self.try_limit
        self.validated = False

    def reset_and_unblock(self):
        self.tries = self.try_limit
        self.validated = False


# The applet's life cycle: no PIN yet (the file system is open), PUK set but no PIN yet,
# then PIN set ("operational, activated": the PIN protects keys and files).
STATE_CREATION = 0x00
STATE_INITIALISATION = 0x01
STATE_OPERATIONAL = 0x05


class Pins:
    """The user PIN (reference 1) and the PUK (reference 2) and the applet's life cycle."""

    PIN_MIN, PIN_MAX, PIN_TRIES = 4, 16, 3
    PUK_LENGTH, PUK_TRIES = 16, 5

    def __init__(self):
        self.state = STATE_CREATION
        self.pin = OwnerPin(self.PIN_TRIES, self.PIN_MAX)
        self.puk = None

    @property
    def open(self):
        """Before a PIN exists, everything the file system guards is allowed."""
        return self.state in (STATE_CREATION, STATE_INITIALISATION)

    def end_session(self):
        self.pin.validated = False
        if self.puk:
            self.puk.validated = False

    def _padded(self, pin):
        """PINs are kept padded with zeros to 16 bytes."""
        return pin + bytes(self.PIN_MAX - len(pin))

    def verify(self, apdu):
        """VERIFY: whether the PIN was right; without data, only the status is answered."""
        if apdu.p1p2 != 0x0001:
            raise CardError(SW_INCORRECT_P1P2)
        lc = apdu.lc
        if 0 < lc < self.PIN_MIN or lc > self.PIN_MAX:
            raise CardError(SW_WRONG_LENGTH)
        if lc == 0:
            if self.open:
                raise CardError(SW_OK)
            raise CardError(SW_PIN_TRIES_REMAINING | self.pin.tries)
        return self.pin.check(self._padded(apdu.data))

    def change_reference_data(self, apdu):
        """Sets the PUK then the PIN on a new card; later changes the PIN (old || new)."""
        lc, data = apdu.lc, apdu.data
        if self.state == STATE_CREATION:
            if apdu.p1 != 0x01 or apdu.p2 not in (0x01, 0x02):
                raise CardError(SW_INCORRECT_P1P2)
            if apdu.p2 == 0x02:
                if lc != self.PUK_LENGTH:
                    raise CardError(SW_WRONG_LENGTH)
                self.puk = OwnerPin(self.PUK_TRIES, self.PUK_LENGTH)
                self.puk.update(data)
                self.state = STATE_INITIALISATION
                return
            self._set_pin(data)                      # a PIN without a PUK, for good
        elif self.state == STATE_INITIALISATION:
            if apdu.p1p2 != 0x0101:
                raise CardError(SW_INCORRECT_P1P2)
            self._set_pin(data)
        else:
            if apdu.p1p2 != 0x0001:
                raise CardError(SW_INCORRECT_P1P2)
            if lc != 2 * self.PIN_MAX:               # both PINs padded by the host
                raise CardError(SW_WRONG_LENGTH)
            if not self.pin.check(data[:self.PIN_MAX]):
                raise CardError(SW_PIN_TRIES_REMAINING | self.pin.tries)
            self.pin.update(data[self.PIN_MAX:])     # this also ends the PIN's validation

    def _set_pin(self, pin):
        if not self.PIN_MIN <= len(pin) <= self.PIN_MAX:
            raise CardError(SW_WRONG_LENGTH)
        self.pin.update(self._padded(pin))
        self.state = STATE_OPERATIONAL

    def reset_retry_counter(self, apdu):
        """RESET RETRY COUNTER: PUK || new PIN unblocks the PIN and sets it."""
        if self.state != STATE_OPERATIONAL:
            raise CardError(SW_COMMAND_NOT_ALLOWED)
        lc = apdu.lc
        if not self.PUK_LENGTH + self.PIN_MIN <= lc <= self.PUK_LENGTH + self.PIN_MAX:
            raise CardError(SW_WRONG_LENGTH)
        if apdu.p1p2 != 0x0001:
            raise CardError(SW_INCORRECT_P1P2)
        if self.puk is None:
            raise CardError(SW_PIN_TRIES_REMAINING)
        if not self.puk.check(apdu.data[:self.PUK_LENGTH]):
            raise CardError(SW_PIN_TRIES_REMAINING | self.puk.tries)
        self.pin.update(self._padded(apdu.data[self.PUK_LENGTH:]))


# ---- keys and cryptography ----------------------------------------------------------------

class PrimeCurve:
    """y^2 = x^3 + ax + b over GF(p), with base point G of order n and cofactor h.

    The applet gets explicit domain parameters (tags 81-87) and must work with any prime
    curve the driver sends: OpenSC 0.23 sends ten, four of which (brainpoolP192r1/P224r1/
    P320r1, secp192k1) the cryptography package does not know. So the curve arithmetic
    is here, in Jacobian coordinates; scalars come from `secrets`. It is not hardened
    against timing attacks: this is a test card.
    """

    # The prime lengths in bytes the applet knows (field sizes 192..521 bits).
    FIELD_BITS = {24: 192, 28: 224, 32: 256, 40: 320, 48: 384, 64: 512, 66: 521}

    def __init__(self, p, a, b, g, n, h, size):
        self.p, self.a, self.b, self.n, self.h = p, a, b, n, h
        self.size = size                 # bytes of a field element
        self.g = g

    @classmethod
    def from_tlv(cls, buf, off, length):
        """The curve of an EC key generation's data (81 p, 82 a, 83 b, 84 G, 85 n, 87 h)."""
        pos, n = tlv_value(buf, off, length, 0x81)
        if n not in cls.FIELD_BITS:
            raise CardError(SW_FUNC_NOT_SUPPORTED)
        size = n

        def integer(tag):
            pos, n = tlv_value(buf, off, length, tag)
            return int.from_bytes(buf[pos:pos + n], "big")

        p, a, b, order = integer(0x81), integer(0x82), integer(0x83), integer(0x85)
        pos, n = tlv_value(buf, off, length, 0x84)
        point = bytes(buf[pos:pos + n])
        pos, n = tlv_value(buf, off, length, 0x87)
        if n == 2:
            cofactor = signed16(buf[pos], buf[pos + 1])
        elif n == 1:
            cofactor = signed8(buf[pos])
        else:
            raise InvalidArguments
        if len(point) != 1 + 2 * size or point[0] != 0x04 or p < 3 or order < 2:
            raise CardError(SW_DATA_INVALID)
        g = (int.from_bytes(point[1:1 + size], "big"), int.from_bytes(point[1 + size:], "big"))
        curve = cls(p, a, b, g, order, cofactor, size)
        if not curve.on_curve(g):
            raise CardError(SW_DATA_INVALID)
        return curve

    def on_curve(self, point):
        x, y = point
        return 0 <= x < self.p and 0 <= y < self.p and (y * y - x * x * x - self.a * x - self.b) % self.p == 0

    def _double(self, P):
        X, Y, Z = P
        p = self.p
        if Y == 0 or Z == 0:
            return (1, 1, 0)
        YY = Y * Y % p
        S = 4 * X * YY % p
        M = (3 * X * X + self.a * pow(Z, 4, p)) % p
        X3 = (M * M - 2 * S) % p
        return (X3, (M * (S - X3) - 8 * YY * YY) % p, 2 * Y * Z % p)

    def _add(self, P, Q):
        if P[2] == 0:
            return Q
        if Q[2] == 0:
            return P
        p = self.p
        Z1Z1, Z2Z2 = P[2] * P[2] % p, Q[2] * Q[2] % p
        U1, U2 = P[0] * Z2Z2 % p, Q[0] * Z1Z1 % p
        S1, S2 = P[1] * Q[2] * Z2Z2 % p, Q[1] * P[2] * Z1Z1 % p
        if U1 == U2:
            return self._double(P) if S1 == S2 else (1, 1, 0)
        H, R = (U2 - U1) % p, (S2 - S1) % p
        HH = H * H % p
        HHH, V = H * HH % p, U1 * HH % p
        X3 = (R * R - HHH - 2 * V) % p
        return (X3, (R * (V - X3) - S1 * HHH) % p, H * P[2] * Q[2] % p)

    def multiply(self, k, point):
        """k * point, affine in and out; None is the point at infinity."""
        R, P = (1, 1, 0), (point[0], point[1], 1)
        for bit in bin(k)[2:]:
            R = self._double(R)
            if bit == "1":
                R = self._add(R, P)
        if R[2] == 0:
            return None
        zi = pow(R[2], -1, self.p)
        return (R[0] * zi * zi % self.p, R[1] * zi * zi * zi % self.p)

    def encode_point(self, point):
        return b"\x04" + point[0].to_bytes(self.size, "big") + point[1].to_bytes(self.size, "big")


class EcKey:
    """An EC private key made on the card, with its public point."""

    def __init__(self, curve):
        self.curve = curve
        self.d = secrets.randbelow(curve.n - 1) + 1
        self.q = curve.multiply(self.d, curve.g)

    def public_tlv(self):
        """7F49 with the curve and the public point, each value at the field's length."""
        c = self.curve

        def field(value):
            if value.bit_length() > 8 * c.size:
                raise CardError(SW_UNKNOWN)          # the applet cannot encode it
            return value.to_bytes(c.size, "big")

        return encode_tlv(0x7F49, encode_tlv(0x81, field(c.p)) + encode_tlv(0x82, field(c.a))
                          + encode_tlv(0x83, field(c.b)) + encode_tlv(0x84, c.encode_point(c.g))
                          + encode_tlv(0x85, field(c.n)) + encode_tlv(0x86, c.encode_point(self.q))
                          + encode_tlv(0x87, (c.h & 0xFFFF).to_bytes(2, "big")))

    def sign_digest(self, digest):
        """ECDSA of a hash, DER SEQUENCE { r, s } as a Java Card's Signature gives it."""
        n = self.curve.n
        e = int.from_bytes(digest, "big")
        if 8 * len(digest) > n.bit_length():
            e >>= 8 * len(digest) - n.bit_length()
        while True:
            k = secrets.randbelow(n - 1) + 1
            point = self.curve.multiply(k, self.curve.g)
            r = point[0] % n if point else 0
            s = pow(k, -1, n) * (e + r * self.d) % n
            if r and s:
                return der_sequence(der_integer(r) + der_integer(s))


def der_integer(value):
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x02" + der_length(len(body)) + body


def der_sequence(body):
    return b"\x30" + der_length(len(body)) + body


def der_length(n):
    return bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 0xFF])


class RsaKey:
    """An RSA-2048 private key made on the card (public exponent 65537)."""

    SIZE = 256

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=8 * self.SIZE)

    def public_tlv(self):
        """7F49 { 81 modulus, 82 exponent } (ISO 7816-8 table 3)."""
        numbers = self.key.public_key().public_numbers()
        return encode_tlv(0x7F49, encode_tlv(0x81, numbers.n.to_bytes(self.SIZE, "big"))
                          + encode_tlv(0x82, numbers.e.to_bytes(3, "big")))

    def sign_pkcs1(self, data):
        """PKCS#1 v1.5 block type 1 around what the host sent (a DigestInfo), then RSA.

        This is the Java Card's Cipher ALG_RSA_PKCS1 encrypting with the private key; the
        cryptography package only signs digests it wraps itself, so the RSA step is done
        here with the key's CRT numbers.
        """
        if len(data) > self.SIZE - 11:
            raise CardError(SW_UNKNOWN)              # Java: CryptoException, uncaught
        m = int.from_bytes(b"\x00\x01" + b"\xff" * (self.SIZE - 3 - len(data)) + b"\x00" + data, "big")
        priv = self.key.private_numbers()
        m1 = pow(m, priv.dmp1, priv.p)
        m2 = pow(m, priv.dmq1, priv.q)
        s = m2 + priv.iqmp * (m1 - m2) % priv.p * priv.q
        return s.to_bytes(self.SIZE, "big")

    def decrypt_pkcs1(self, ciphertext):
        try:
            return self.key.decrypt(ciphertext, padding.PKCS1v15())
        except ValueError:
            raise CardError(SW_WRONG_DATA) from None


class EcdsaSigner:
    """The applet's Signature ALG_ECDSA_SHA: SHA-1 of what it is fed, then ECDSA.

    It stays bound to its key (a Java Card Signature object is persistent), but what it
    was fed is lost at reset; signing starts it afresh.
    """

    def __init__(self):
        self.key, self.hash = None, None

    def init(self, key):
        self.key, self.hash = key, hashlib.sha1()

    def discard_input(self):
        if self.key:
            self.hash = hashlib.sha1()

    def update(self, data):
        if self.key is None:
            raise CardError(SW_UNKNOWN)              # Java: CryptoException, uncaught
        self.hash.update(data)

    def sign(self):
        signature = self.key.sign_digest(self.hash.digest())
        self.hash = hashlib.sha1()
        return signature


class Keys:
    """The applet's 16 private key slots (key references 0-15)."""

    COUNT = 16

    def __init__(self):
        self.slots = [None] * self.COUNT

    def get(self, ref):
        key = self.slots[ref] if 0 <= ref < self.COUNT else None
        if key is None:
            raise CardError(SW_UNKNOWN)              # Java: a null key or a bad index
        return key


# ---- the applet -------------------------------------------------------------------------

ALG_GEN_RSA_2048 = 0xF3
ALG_GEN_EC = 0xEC
ALG_RSA_PAD_PKCS1 = 0x11
ALG_ECDSA_SHA1 = 0x21

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_VERIFY = 0x20
INS_MANAGE_SECURITY_ENVIRONMENT = 0x22
INS_PERFORM_SECURITY_OPERATION = 0x2A
INS_CREATE_FILE = 0xE0
INS_UPDATE_BINARY = 0xD6
INS_CHANGE_REFERENCE_DATA = 0x24
INS_DELETE_FILE = 0xE4
INS_GENERATE_ASYMMETRIC_KEY_PAIR = 0x46
INS_RESET_RETRY_COUNTER = 0x2C
INS_GET_RESPONSE = 0xC0
INS_PUT_DATA = 0xDB
INS_GET_CHALLENGE = 0x84

# Only these may be chained (CLA bit 0x10): data larger than a short APDU.
CHAINABLE = (INS_PERFORM_SECURITY_OPERATION, INS_GENERATE_ASYMMETRIC_KEY_PAIR, INS_PUT_DATA)


class IsoApplet:
    AID = bytes.fromhex("F276A288BCFBA69D34F31001")
    # Answer to SELECT: API version 00.06 and the features: secure random (02) and
    # ECC (04), no extended APDUs (01), so OpenSC chains and uses GET RESPONSE.
    SELECT_RESPONSE = bytes([0x00, 0x06, 0x06])
    RAM_SIZE = 660           # the applet's buffer for chained commands and long answers

    def __init__(self):
        self.fs = FileSystem()
        self.pins = Pins()
        self.keys = Keys()
        self.ecdsa = EcdsaSigner()
        self.handlers = {
            INS_SELECT: self.fs.select,
            INS_READ_BINARY: self.fs.read_binary,
            INS_VERIFY: self.verify,
            INS_MANAGE_SECURITY_ENVIRONMENT: self.manage_security_environment,
            INS_PERFORM_SECURITY_OPERATION: self.perform_security_operation,
            INS_CREATE_FILE: self.fs.create_file,
            INS_UPDATE_BINARY: self.fs.update_binary,
            INS_CHANGE_REFERENCE_DATA: self.change_reference_data,
            INS_DELETE_FILE: self.fs.delete_file,
            INS_GENERATE_ASYMMETRIC_KEY_PAIR: self.generate_key_pair,
            INS_RESET_RETRY_COUNTER: self.reset_retry_counter,
            INS_GET_RESPONSE: self.get_response,
            INS_PUT_DATA: self.put_data,
            INS_GET_CHALLENGE: self.get_challenge,
        }
        self.deselect()

    def deselect(self):
        """End of the session: what the applet keeps in CLEAR_ON_DESELECT memory."""
        self.pins.end_session()
        self.fs.new_session(authenticated=False)
        self.ecdsa.discard_input()
        self.ram = bytearray(self.RAM_SIZE)
        self.chain_ins, self.chain_p1p2 = 0, 0   # the command being chained, if any
        self.bytes_remaining = 0                 # of a long answer, for GET RESPONSE
        self.current_pos = 0                     # in ram; ECDSA counts chained parts here
        self.se_algorithm, self.se_key = 0, 0    # the security environment (MSE SET)

    def select(self):
        self.fs.new_session(authenticated=self.pins.open)
        return self.SELECT_RESPONSE

    def process(self, apdu):
        if apdu.secure_messaging():
            raise CardError(SW_SECURE_MESSAGING_NOT_SUPPORTED)
        if self.chain_ins or apdu.chaining:
            self._follow_chain(apdu)
        if self.bytes_remaining > 0 and apdu.ins != INS_GET_RESPONSE:
            raise CardError(SW_COMMAND_NOT_ALLOWED_GENERAL)
        if apdu.cla & 0x80:
            raise CardError(SW_CLA_NOT_SUPPORTED)
        handler = self.handlers.get(apdu.ins)
        if handler is None:
            raise CardError(SW_INS_NOT_SUPPORTED)
        return handler(apdu)

    def _follow_chain(self, apdu):
        """One chain at a time, of one chainable INS and P1-P2.

        A chain that failed half-way is not forgotten: other commands get 6884 (or
        6900 for a chainable INS) until the applet is selected again, as on the card.
        """
        if apdu.ins not in CHAINABLE:
            raise CardError(SW_COMMAND_CHAINING_NOT_SUPPORTED)
        if self.chain_ins == 0 and self.chain_p1p2 == 0:
            self.chain_ins, self.chain_p1p2 = apdu.ins, apdu.p1p2
        elif self.chain_ins != apdu.ins or self.chain_p1p2 != apdu.p1p2:
            raise CardError(SW_COMMAND_NOT_ALLOWED_GENERAL)
        elif not apdu.chaining:
            self.chain_ins, self.chain_p1p2 = 0, 0

    def _receive_chained(self, apdu):
        """Collects a chained command's data in ram; the total once the chain ends.

        While it goes on, each part is answered 9000.
        """
        n = len(apdu.data)
        if self.current_pos + n > self.RAM_SIZE:
            raise CardError(SW_WRONG_LENGTH)
        self.ram[self.current_pos:self.current_pos + n] = apdu.data
        self.current_pos += n
        if apdu.chaining:
            raise CardError(SW_OK)
        total, self.current_pos = self.current_pos, 0
        return total

    def _send_large(self, pos, length):
        """An answer kept in ram: 256 bytes at a time, 61xx while more is left."""
        if length <= 0:
            self.bytes_remaining = self.current_pos = 0
            return b""
        if pos + length > self.RAM_SIZE:
            raise CardError(SW_UNKNOWN)
        n = min(length, 256)
        part = bytes(self.ram[pos:pos + n])
        left = length - n
        if left > 0:
            self.bytes_remaining, self.current_pos = left, pos + n
            raise CardError(SW_BYTES_REMAINING | min(left, 256) & 0xFF, part)
        self.bytes_remaining = self.current_pos = 0
        return part

    def _require_pin(self):
        if not self.pins.pin.validated:
            raise CardError(SW_SECURITY_STATUS_NOT_SATISFIED)

    # -- PIN commands (the file system keeps its own "verified" flag)

    def verify(self, apdu):
        right = self.pins.verify(apdu)
        self.fs.authenticated = right
        if not right:
            raise CardError(SW_PIN_TRIES_REMAINING | self.pins.pin.tries)
        return b""

    def change_reference_data(self, apdu):
        self.pins.change_reference_data(apdu)
        return b""

    def reset_retry_counter(self, apdu):
        self.pins.reset_retry_counter(apdu)
        return b""

    # -- keys

    def manage_security_environment(self, apdu):
        """MSE SET: algorithm (80) and key (84) for key generation (P2 00), signing (B6),
        deciphering (B8); RESTORE (P1 F3) empties it. Checks the key is there."""
        self._require_pin()
        buf, off, lc = apdu.buf, apdu.offset, apdu.lc
        if not tlv_consistent(buf, off, lc):
            raise CardError(SW_DATA_INVALID)
        if apdu.p1 == 0x41:
            try:
                # The applet searches the data with Lc as a (signed) byte.
                pos = find_tag(buf, off, signed8(lc & 0xFF), 0x80)
                if buf[pos + 1] != 1:
                    raise InvalidArguments
                algorithm = buf[pos + 2]
                pos = find_tag(buf, off, signed8(lc & 0xFF), 0x84)
                if buf[pos + 1] != 1 or signed8(buf[pos + 2]) >= Keys.COUNT:
                    raise InvalidArguments
                key = signed8(buf[pos + 2])              # 80..FF pass, as negative numbers
            except (NotFound, InvalidArguments):
                raise CardError(SW_DATA_INVALID) from None
        elif apdu.p1 == 0xF3:
            algorithm, key = 0, -1
        else:
            raise CardError(SW_FUNC_NOT_SUPPORTED)
        if apdu.p2 == 0x00:
            if algorithm not in (ALG_GEN_EC, ALG_GEN_RSA_2048):
                raise CardError(SW_FUNC_NOT_SUPPORTED)
            if key < 0:
                raise CardError(SW_DATA_INVALID)
        elif apdu.p2 == 0xB6:
            if key == -1:
                raise CardError(SW_DATA_INVALID)
            if algorithm == ALG_RSA_PAD_PKCS1:
                self._require_key(key, RsaKey)
            elif algorithm == ALG_ECDSA_SHA1:
                self._require_key(key, EcKey)
            else:
                raise CardError(SW_FUNC_NOT_SUPPORTED)
        elif apdu.p2 == 0xB8:
            if algorithm != ALG_RSA_PAD_PKCS1:
                raise CardError(SW_FUNC_NOT_SUPPORTED)
            if key == -1:
                raise CardError(SW_DATA_INVALID)
            self._require_key(key, RsaKey)
        else:
            raise CardError(SW_FUNC_NOT_SUPPORTED)
        self.se_algorithm, self.se_key = algorithm, key
        return b""

    def _require_key(self, ref, kind):
        """MSE's check: an empty slot fails as the applet's null key does (6F00)."""
        if not isinstance(self.keys.get(ref), kind):
            raise CardError(SW_DATA_INVALID)

    def _current_key(self, kind):
        """The key of the security environment, as the applet casts it."""
        key = self.keys.get(self.se_key)
        if not isinstance(key, kind):
            raise CardError(SW_UNKNOWN)              # Java: ClassCastException
        return key

    def generate_key_pair(self, apdu):
        """GENERATE ASYMMETRIC KEY PAIR in the slot of the security environment; answers
        the public key (7F49), longer than 256 bytes: 61xx and GET RESPONSE."""
        self._require_pin()
        if self.se_algorithm == ALG_GEN_RSA_2048:
            if apdu.p1p2 != 0x4200:
                raise CardError(SW_INCORRECT_P1P2)
            if apdu.chaining:
                raise CardError(SW_COMMAND_CHAINING_NOT_SUPPORTED)
            key = RsaKey()
            self.keys.slots[self.se_key] = key
        elif self.se_algorithm == ALG_GEN_EC:
            if apdu.p1p2 != 0x0000:
                raise CardError(SW_INCORRECT_P1P2)
            total = self._receive_chained(apdu)      # the curve may need chaining
            try:
                curve = PrimeCurve.from_tlv(self.ram, 0, total)
            except (NotFound, InvalidArguments):
                raise CardError(SW_DATA_INVALID) from None
            key = EcKey(curve)
            self.keys.slots[self.se_key] = key
            self.ram[:] = bytes(self.RAM_SIZE)
            self.current_pos = 0
        else:
            raise CardError(SW_CONDITIONS_NOT_SATISFIED)
        public = key.public_tlv()
        self.ram[:len(public)] = public
        return self._send_large(0, len(public))

    def get_response(self, apdu):
        self._require_pin()
        if self.bytes_remaining <= 0:
            raise CardError(SW_CONDITIONS_NOT_SATISFIED)
        expected = min(self.bytes_remaining, 256)
        if apdu.ne != expected:
            raise CardError(SW_CORRECT_LENGTH | expected & 0xFF)
        return self._send_large(self.current_pos, self.bytes_remaining)

    def perform_security_operation(self, apdu):
        self._require_pin()
        if apdu.p1p2 == 0x9E9A:
            return self._compute_signature(apdu)
        if apdu.p1p2 == 0x8086:
            return self._decipher(apdu)
        raise CardError(SW_INCORRECT_P1P2)

    def _compute_signature(self, apdu):
        if self.se_algorithm == ALG_RSA_PAD_PKCS1:
            key = self._current_key(RsaKey)
            if apdu.lc > 247:
                raise CardError(SW_WRONG_LENGTH)
            signature = key.sign_pkcs1(apdu.data)
            self.ram[:len(signature)] = signature
            if apdu.ne < len(signature):
                raise CardError(SW_CORRECT_LENGTH)   # Le must be 00
            return signature
        if self.se_algorithm == ALG_ECDSA_SHA1:
            # The card hashes: the data may come in a chain, fed to the hash part by part.
            key = self._current_key(EcKey)
            if self.current_pos == 0:
                self.ecdsa.init(key)
                if apdu.chaining:
                    self.current_pos = 1
            self.ecdsa.update(apdu.data)
            if apdu.chaining:
                self.current_pos += 1
                return b""
            self.current_pos = 0
            return self.ecdsa.sign()
        raise CardError(SW_CONDITIONS_NOT_SATISFIED)

    def _decipher(self, apdu):
        total = self._receive_chained(apdu)          # a 256-byte cryptogram needs chaining
        if self.ram[0] != 0x00:                      # padding indicator
            raise CardError(SW_WRONG_DATA)
        if self.se_algorithm != ALG_RSA_PAD_PKCS1:
            raise CardError(SW_FUNC_NOT_SUPPORTED)
        key = self._current_key(RsaKey)
        if total - 1 != RsaKey.SIZE:
            raise CardError(SW_WRONG_LENGTH)
        return key.decrypt_pkcs1(bytes(self.ram[1:total]))

    def put_data(self, apdu):
        """Private key import (PUT DATA 3FFF): this applet is built without it."""
        self._require_pin()
        if apdu.p1p2 == 0x3FFF:
            raise CardError(SW_COMMAND_NOT_ALLOWED_GENERAL)
        raise CardError(SW_INCORRECT_P1P2)

    def get_challenge(self, apdu):
        if apdu.p1p2:
            raise CardError(SW_INCORRECT_P1P2)
        if not 0 < apdu.ne <= 256:
            raise CardError(SW_WRONG_LENGTH)
        return secrets.token_bytes(apdu.ne)


# ---- the Java Card runtime ------------------------------------------------------------------

class Card:
    """The runtime around the applet: ATR, reset, applet selection, response shaping."""

    ATR = bytes.fromhex("3B80800101")    # the ATR jCardSim gives the oracle card

    def __init__(self):
        self.applet = IsoApplet()
        self.selected = False

    def reset(self):
        """Power-off, power-on and reset: the session ends, no applet is selected."""
        if self.selected:
            self.applet.deselect()
        self.selected = False

    def transmit(self, raw):
        try:
            apdu = Apdu(raw)
        except CardError as e:
            return e.sw.to_bytes(2, "big")
        selecting = False
        if apdu.selects_applet() and self._names_applet(apdu):
            if self.selected:
                self.applet.deselect()
            self.selected = selecting = True
        elif apdu.selects_applet() and not self.selected:
            return SW_APPLET_SELECT_FAILED.to_bytes(2, "big")
        if not self.selected:
            return SW_COMMAND_NOT_ALLOWED.to_bytes(2, "big")
        try:
            data, sw = (self.applet.select() if selecting else self.applet.process(apdu)), SW_OK
        except CardError as e:
            data, sw = e.data, e.sw
        except Exception:                # a bug here is what an uncaught Java exception is
            traceback.print_exc(limit=-2)
            data, sw = b"", SW_UNKNOWN
        if len(data) > apdu.max_out:
            data, sw = b"", SW_UNKNOWN
        if sw >> 8 not in (0x61, 0x62, 0x63) and not 0x90 <= sw >> 8 <= 0x9F:
            data = b""                   # the runtime drops data sent before an error
        return data + sw.to_bytes(2, "big")

    def _names_applet(self, apdu):
        """SELECT without data picks the (only) applet; with data, its AID or a prefix."""
        if apdu.lc == 0:
            return True
        return 0 < len(apdu.data) <= len(IsoApplet.AID) and IsoApplet.AID.startswith(apdu.data)


# ---- vpcd ----------------------------------------------------------------------------------

class VpcdLink:
    """The card's side of vpcd's TCP protocol."""

    POWER_OFF, POWER_ON, RESET, GET_ATR = 0x00, 0x01, 0x02, 0x04
    CONTROL_NAMES = {POWER_OFF: "power off", POWER_ON: "power on", RESET: "reset", GET_ATR: "get ATR"}

    def __init__(self, card, trace):
        self.card = card
        self.trace = trace

    def connect(self, host, port, wait):
        """vpcd listens once pcscd has loaded it; retry until then."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.sock = socket.create_connection((host, port))
                return
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise SystemExit(f"isoapplet: cannot connect to vpcd at {host}:{port}: {e}")
                time.sleep(0.1)

    def _receive(self, n):
        data = bytearray()
        while len(data) < n:
            # vpcd's socket uses Nagle's algorithm: what it sends waits until what it sent
            # before is acknowledged. Acknowledge at once, not after Linux's delayed-ACK
            # timeout (40 ms), or every APDU takes 40 ms.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def _send(self, data):
        self.sock.sendall(len(data).to_bytes(2, "big") + data)

    def _log(self, line):
        if self.trace:
            self.trace.write(line + "\n")
            self.trace.flush()

    def serve(self):
        """Until vpcd closes the connection (pcscd stopped)."""
        while True:
            header = self._receive(2)
            if header is None:
                return
            message = self._receive(int.from_bytes(header, "big"))
            if message is None:
                return
            if len(message) == 1 and message[0] in self.CONTROL_NAMES:
                # A 1-byte command APDU would look the same: vpcd's protocol cannot carry
                # one 00, 01, 02 or 04 byte (other single bytes are answered 6700 below).
                code = message[0]
                self._log("# " + self.CONTROL_NAMES[code])
                if code == self.GET_ATR:
                    self._send(self.card.ATR)
                else:
                    self.card.reset()
            elif message:
                self._log("> " + message.hex().upper())
                response = self.card.transmit(message)
                self._log("< " + response.hex().upper())
                self._send(response)


def main():
    parser = argparse.ArgumentParser(description="A virtual IsoApplet smart card behind vsmartcard-vpcd.")
    parser.add_argument("--host", default="127.0.0.1", help="vpcd's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=35963, help="vpcd's port (default 35963)")
    parser.add_argument("--trace", metavar="FILE", help="write every APDU and answer, in hex, to FILE")
    parser.add_argument("--connect-timeout", type=float, default=10, metavar="SECONDS",
                        help="how long to retry connecting to vpcd (default 10)")
    args = parser.parse_args()
    trace = open(args.trace, "w", encoding="ascii") if args.trace else None
    link = VpcdLink(Card(), trace)
    link.connect(args.host, args.port, args.connect_timeout)
    try:
        link.serve()
    except (KeyboardInterrupt, ConnectionError):
        pass


if __name__ == "__main__":
    sys.exit(main())
