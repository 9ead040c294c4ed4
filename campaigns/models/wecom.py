"""The WeCom (企业微信) connector's state: tokens, callback receipts, tag mappings."""

__all__ = []
