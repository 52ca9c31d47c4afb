"""The portal as one Piccolo app: its tables and its migrations folder."""

from piccolo.conf.apps import AppConfig

from app.accounts.tables import Account, AccountToken
from app.applications.tables import Application, ApplicationApi
from app.config import PROJECT_ROOT
from app.db import APP_NAME
from app.identity.tables import (
    Client,
    ClientSecret,
    ScopeGrant,
    SecretReveal,
    SigningKey,
    TokenDay,
    TokenFailure,
)
from app.mail.tables import OutboxMail
from app.partners.tables import (
    Category,
    InvitationCode,
    Partner,
    PartnerCategory,
    PartnerChange,
)
from app.schoolaccess.tables import AccessRequest
from app.staff.tables import AuditEvent, School, Staff, StaffRight, StaffSession
from app.throttle import Throttle
from app.web.tables import WebSession

APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=str(PROJECT_ROOT / "migrations"),
    table_classes=[
        Account,
        AccountToken,
        WebSession,
        Throttle,
        OutboxMail,
        Category,
        Partner,
        PartnerCategory,
        InvitationCode,
        PartnerChange,
        Application,
        ApplicationApi,
        Client,
        ClientSecret,
        SecretReveal,
        ScopeGrant,
        SigningKey,
        TokenDay,
        TokenFailure,
        School,
        Staff,
        StaffRight,
        StaffSession,
        AuditEvent,
        AccessRequest,
    ],
)
