from django.urls import path

from disputes import views

app_name = "disputes"

urlpatterns = [
    path("", views.dispute_list, name="list"),
    path("open/<int:order_pk>/", views.dispute_open, name="open"),
    path("cite/<int:order_pk>/", views.dispute_cite_message, name="cite_message"),
    path("inspections/", views.inspector_home, name="inspector_home"),
    path("inspections/<int:pk>/", views.inspection_detail, name="inspection_detail"),
    path("<int:pk>/", views.dispute_detail, name="detail"),
    path("<int:pk>/message/", views.dispute_message, name="message"),
    path("<int:pk>/propose/", views.dispute_propose, name="propose"),
    path("<int:pk>/reject/", views.dispute_reject, name="reject"),
    path("<int:pk>/accept/<int:proposal_pk>/", views.dispute_accept, name="accept"),
    path("<int:pk>/evidence/", views.dispute_add_evidence, name="add_evidence"),
    path("<int:pk>/evidence/<int:evidence_pk>/", views.evidence_file, name="evidence"),
    path("<int:pk>/withdraw/", views.dispute_withdraw, name="withdraw"),
    path("<int:pk>/escalate/", views.dispute_escalate, name="escalate"),
    path(
        "<int:pk>/inspections/<int:inspection_pk>/pay/",
        views.dispute_inspection_pay,
        name="inspection_pay",
    ),
]
