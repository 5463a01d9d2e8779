"""Single sign-on with OpenID Connect (mozilla-django-oidc), beside local accounts.

An identity provider's user signs in as the local user with the same email address, or as
a new user named after it (OIDC_CREATE_USERS). Only an email the provider vouches for
(`email_verified`) may match an account — otherwise anyone able to name an address at a
careless provider could take over the local account that has it — and OIDC_ALLOWED_DOMAINS
keeps out addresses of other organisations.
"""

from __future__ import annotations

import logging

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

logger = logging.getLogger(__name__)


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


class Backend(OIDCAuthenticationBackend):
    def verify_claims(self, claims: dict) -> bool:
        email = claims.get("email") or ""
        if "@" not in email:
            logger.warning("single sign-on refused: the provider sent no email address")
            return False
        if settings.OIDC_REQUIRE_VERIFIED_EMAIL and claims.get("email_verified") is not True:
            logger.warning("single sign-on refused for %s: email not verified", email)
            return False
        domains = settings.OIDC_ALLOWED_DOMAINS
        if domains and email_domain(email) not in domains:
            logger.warning("single sign-on refused for %s: domain not allowed", email)
            return False
        return True

    def filter_users_by_claims(self, claims: dict):
        return self.UserModel.objects.filter(email__iexact=claims["email"])

    def create_user(self, claims: dict):
        email = claims["email"]
        user = self.UserModel.objects.create_user(
            email, email=email, first_name=(claims.get("given_name") or "")[:150],
            last_name=(claims.get("family_name") or "")[:150])
        logger.info("single sign-on created user %s", email)
        return user
