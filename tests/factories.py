"""factory-boy factories for accounts; each app's factories live in tests/<app>/factories.py."""

import factory

from accounts.models import Organisation, User
from tradeassure.platform.demo import DEMO_PASSWORD

PASSWORD = DEMO_PASSWORD


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Company {n}")
    kind = Organisation.Kind.BUYER
    country = "GB"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    role = User.Role.BUYER
    organisation = factory.SubFactory(OrganisationFactory)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class BuyerFactory(UserFactory):
    role = User.Role.BUYER
    organisation = factory.SubFactory(OrganisationFactory, kind=Organisation.Kind.BUYER)


class SupplierStaffFactory(UserFactory):
    role = User.Role.SUPPLIER_STAFF
    organisation = factory.SubFactory(
        OrganisationFactory, kind=Organisation.Kind.SUPPLIER, country="CN"
    )


class InspectorFactory(UserFactory):
    role = User.Role.INSPECTOR
    organisation = factory.SubFactory(
        OrganisationFactory,
        kind=Organisation.Kind.INSPECTION,
        country="HK",
        inspection_approved=True,
    )


class PartnerFactory(UserFactory):
    role = User.Role.PARTNER
    organisation = factory.SubFactory(OrganisationFactory, kind=Organisation.Kind.PARTNER)


class StaffFactory(UserFactory):
    organisation = None
    is_staff = True

    @factory.post_generation
    def staff_group(obj, create, extracted, **kwargs):
        if create:
            from django.contrib.auth.models import Group

            from accounts.roles import GROUP_FOR_ROLE

            obj.groups.add(Group.objects.get(name=GROUP_FOR_ROLE[obj.role]))


class MediatorFactory(StaffFactory):
    role = User.Role.MEDIATOR


class VettingFactory(StaffFactory):
    role = User.Role.VETTING
