"""The WeCom (企业微信) connector: message crypto, the API client and the callback endpoint."""
