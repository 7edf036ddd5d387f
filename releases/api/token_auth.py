"""API tokens for people (Authorization: Token <key>), stored hashed (releases.tokens.token_digest)."""
from rest_framework.authentication import TokenAuthentication

from releases.tokens import token_digest


class HashedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        return super().authenticate_credentials(token_digest(key))
