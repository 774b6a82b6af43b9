// The Stripe card form on the payment page (loaded only when Stripe is the provider).
// Stripe.js collects the card in its own iframe and confirms the PaymentIntent in the browser;
// the card number never reaches TradeAssure. The payment is recorded as paid only when
// Stripe's webhook arrives: the page's status block polls until then.
(function () {
  "use strict";
  var form = document.getElementById("stripe-card-form");
  if (!form) return;
  var errors = document.getElementById("stripe-card-errors");
  if (!window.Stripe) {
    errors.textContent = "The card form could not load. Check your connection and reload the page.";
    return;
  }
  var stripe = window.Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#stripe-card-element");
  card.on("change", function (event) {
    errors.textContent = event.error ? event.error.message : "";
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    errors.textContent = "";
    stripe
      .confirmCardPayment(form.dataset.clientSecret, { payment_method: { card: card } })
      .then(function (result) {
        if (result.error) {
          errors.textContent = result.error.message;
          button.disabled = false;
          return;
        }
        window.location.assign(form.dataset.returnUrl);
      });
  });
})();
